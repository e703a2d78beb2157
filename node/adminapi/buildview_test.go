package adminapi_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/node/adminapi"
	"github.com/tbfg/tbfg-node/scheduler"
)

// TestNewBuildViewJSON pins the JSON of a build, which scripts rely on.
func TestNewBuildViewJSON(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name string
		b    scheduler.BuildInfo
		want string
	}{
		{"queued", scheduler.BuildInfo{ID: 1, Drv: "/gnu/store/a-x.drv", System: "x86_64-linux", Submitter: "n1",
			State: scheduler.BuildQueued, Submitted: at},
			`{"id":1,"derivation":"/gnu/store/a-x.drv","system":"x86_64-linux","state":"queued","attempt":0,` +
				`"node":"","priority":0,"submitter":"n1","outputs":{},"inputs":[],"submitted":"2024-05-06T05:08:09Z",` +
				`"allocated":null,"started":null,"finished":null,"not_before":null}`},
		{"failed", scheduler.BuildInfo{ID: 7, Drv: "/gnu/store/b-y.drv", System: "aarch64-linux", State: scheduler.BuildFailed,
			Reason: scheduler.ReasonBuildError, Message: "exit 1", Attempt: 2, LastNode: "n2", Priority: 3,
			Outputs: []scheduler.Output{{Name: "out", Path: "/gnu/store/c-y"}}, Inputs: []string{"/gnu/store/d-z"},
			Submitted: at, Allocated: at, Started: at, Finished: at.Add(time.Second)},
			`{"id":7,"derivation":"/gnu/store/b-y.drv","system":"aarch64-linux","state":"failed","reason":"build-error",` +
				`"message":"exit 1","attempt":2,"node":"","last_node":"n2","priority":3,"submitter":"",` +
				`"outputs":{"out":"/gnu/store/c-y"},"inputs":["/gnu/store/d-z"],"submitted":"2024-05-06T05:08:09Z",` +
				`"allocated":"2024-05-06T05:08:09Z","started":"2024-05-06T05:08:09Z","finished":"2024-05-06T05:08:10Z",` +
				`"not_before":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(adminapi.NewBuildView(tt.b))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("JSON:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
