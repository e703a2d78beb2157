package node

import "testing"

func TestLocalStatus(t *testing.T) {
	c := DefaultConfig()
	c.DataDir = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: c, log: discard()}
	st := n.localStatus()
	if len(st.Systems) == 0 || st.Cores == 0 || st.MaxBuilds == 0 || st.DataFreeBytes == 0 || st.Version == "" {
		t.Errorf("localStatus() = %+v: missing figures", st)
	}
}
