package mesh

import (
	"reflect"

	"github.com/hashicorp/raft"
)

// await waits for a future of this Raft incarnation, and ends with
// raft.ErrRaftShutdown once the incarnation is told to stop.
//
// hashicorp/raft (v1.7.2, as v1.8.0) leaves unset the shutdown channel of the futures
// that Apply and the membership calls return, and when it shuts down it
// drops the commands still queued for the state machine without answering
// their futures: a plain Error() on one of those never returns, and the
// request handler or loop waiting on it would hold Close forever.
func (rn *raftNode) await(f raft.Future) error {
	bindShutdown(f, rn.stopping)
	return f.Error()
}

// stopChType is the type of the futures' ShutdownCh field.
var stopChType = reflect.TypeFor[chan struct{}]()

// bindShutdown sets f's exported ShutdownCh field (promoted from the
// library's deferError) to stopping if f has one and it is unset. Raft's
// goroutines never read that field: only Error does, in the caller's
// goroutine, after this returns. It reports whether it set the field.
func bindShutdown(f raft.Future, stopping chan struct{}) bool {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return false
	}
	fld := v.Elem().FieldByName("ShutdownCh")
	if !fld.IsValid() || !fld.CanSet() || fld.Type() != stopChType || !fld.IsNil() {
		return false
	}
	fld.Set(reflect.ValueOf(stopping))
	return true
}
