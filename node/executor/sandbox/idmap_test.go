package sandbox

import (
	"syscall"
	"testing"
)

func TestParseIDMap(t *testing.T) {
	got, err := parseIDMap([]byte("         0          0 4294967295\n"))
	if err != nil || len(got) != 1 || got[0] != (syscall.SysProcIDMap{ContainerID: 0, HostID: 0, Size: 4294967295}) {
		t.Fatalf("initial namespace: %v, %v", got, err)
	}
	if !covers(got, DefaultIDs) {
		t.Error("the initial namespace does not cover the default ids")
	}
	got, err = parseIDMap([]byte("0 1000 1\n1 100000 65536\n"))
	if err != nil || len(got) != 2 || got[1] != (syscall.SysProcIDMap{ContainerID: 1, HostID: 1, Size: 65536}) {
		t.Fatalf("container: %v, %v", got, err)
	}
	if covers(got, DefaultIDs) || !covers(got, IDRange{First: 30000, Count: 64}) || covers(got, IDRange{First: 65500, Count: 64}) {
		t.Error("wrong coverage of a container's ids")
	}
	if _, err := parseIDMap([]byte("0 x 1\n")); err == nil {
		t.Error("accepted a bad line")
	}
}
