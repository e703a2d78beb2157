package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/tbfg/tbfg-node/scheduler"
)

// The events of /events, one JSON object per message:
//
//	event: build    {"id":7,"derivation":"/gnu/store/…-hello.drv","state":"running","node":"12D3…","system":"x86_64-linux","index":42}
//	event: member   {"id":"12D3…","status":"active","index":42}   (joined, lost or left the build queue)
//	event: members  {}                                             (mesh membership or leader changed)
//	event: reset    {}                                             (too much changed to list: re-read everything)
//	event: tail     {"id":7,"lines":["…"]}                         (with ?tails=1: last lines of a running build's log)
//	event: log      {"text":"…"}                                   (with ?log=ID: the next bytes of its log; id: is the offset after them)
//	event: end      {"state":"succeeded"}                          (with ?log=ID: the build ended and its whole log was sent)

// BuildEvent is the data of a build event.
type BuildEvent struct {
	ID         uint64 `json:"id"`
	Derivation string `json:"derivation"`
	State      string `json:"state"`
	Node       string `json:"node"` // the node of its latest attempt, "" if never allocated
	System     string `json:"system"`
	Index      uint64 `json:"index"`
}

// MemberEvent is the data of a member event.
type MemberEvent struct {
	ID     string `json:"id"`
	Status string `json:"status"` // active, lost or left
	Index  uint64 `json:"index"`
}

// maxEventsPerWake bounds the build events of one wake-up; beyond it a
// reset event is cheaper for everyone.
const maxEventsPerWake = 1000

// sse encodes one Server-Sent Event. data must be one line (JSON is).
func sse(event, id string, data []byte) []byte {
	b := make([]byte, 0, len(event)+len(id)+len(data)+24)
	b = append(b, "event: "...)
	b = append(b, event...)
	if id != "" {
		b = append(b, "\nid: "...)
		b = append(b, id...)
	}
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

func sseJSON(event, id string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte("{}")
	}
	return sse(event, id, data)
}

// loop publishes replica changes and log tails until ctx ends, then closes
// the hub.
func (s *Server) loop(ctx context.Context) {
	defer s.hub.close()
	sub := s.cfg.Replica.Changes()
	defer sub.Close()
	tick := time.NewTicker(s.cfg.TailInterval)
	defer tick.Stop()
	defer s.tails.stop()
	seq := s.cfg.Replica.LastChange()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.C:
			seq = s.publishChanges(seq)
			if s.hub.wantsTails() {
				s.tails.follow(ctx, s.runningIDs())
			}
		case <-s.membersChanged:
			s.hub.publish(kindState, sse("members", "", []byte("{}")))
		case <-s.hub.tailsChanged:
			if s.hub.wantsTails() {
				s.tails.follow(ctx, s.runningIDs())
			} else {
				s.tails.stop()
			}
		case <-tick.C:
			s.tails.flush()
		}
	}
}

// publishChanges publishes the changes after seq and returns the last seq.
func (s *Server) publishChanges(seq uint64) uint64 {
	changes, complete := s.cfg.Replica.ChangesSince(seq)
	if len(changes) == 0 {
		return seq
	}
	last := changes[len(changes)-1].Seq
	if s.hub.count() == 0 {
		return last
	}
	builds := map[scheduler.BuildID]uint64{} // build → index of its latest change
	var members []string
	memberIndex := map[string]uint64{}
	reset := !complete
	for _, c := range changes {
		reset = reset || c.Reset
		for _, id := range c.Builds {
			builds[id] = c.Index
		}
		for _, m := range c.Members {
			if _, seen := memberIndex[m]; !seen {
				members = append(members, m)
			}
			memberIndex[m] = c.Index
		}
	}
	if reset || len(builds) > maxEventsPerWake {
		s.hub.publish(kindState, sse("reset", "", []byte("{}")))
		return last
	}
	for _, msg := range s.changeEvents(builds, members, memberIndex) {
		s.hub.publish(kindState, msg)
	}
	return last
}

// changeEvents reads the changed builds and members and encodes their
// events, builds in id order.
func (s *Server) changeEvents(builds map[scheduler.BuildID]uint64, members []string, memberIndex map[string]uint64) [][]byte {
	ids := make([]scheduler.BuildID, 0, len(builds))
	for id := range builds {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var evs []BuildEvent
	var mevs []MemberEvent
	s.cfg.Replica.Read(func(st *scheduler.State) {
		for _, id := range ids {
			if b, ok := st.Build(id); ok {
				evs = append(evs, BuildEvent{ID: uint64(id), Derivation: b.Drv, State: b.State.String(),
					Node: b.LastNode, System: b.System, Index: builds[id]})
			}
		}
		for _, m := range members {
			if info, ok := st.Member(m); ok {
				mevs = append(mevs, MemberEvent{ID: m, Status: info.Status, Index: memberIndex[m]})
			}
		}
	})
	out := make([][]byte, 0, len(evs)+len(mevs))
	for _, e := range evs {
		out = append(out, sseJSON("build", "", e))
	}
	for _, e := range mevs {
		out = append(out, sseJSON("member", "", e))
	}
	return out
}

// runningIDs lists the running builds the overview shows.
func (s *Server) runningIDs() []uint64 {
	var ids []uint64
	s.cfg.Replica.Read(func(st *scheduler.State) {
		for _, b := range st.BuildsNewest(scheduler.BuildFilter{States: runningStates}, 0, overviewRunning).Builds {
			ids = append(ids, uint64(b.ID))
		}
	})
	return ids
}

// events serves /events: ?tails=1 adds the log tails of running builds,
// ?log=ID&offset=N the log of build ID from byte N (or from the
// Last-Event-ID a reconnecting browser sends).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	p, err := parseParams(r.URL.RawQuery, "tails", "log", "offset")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tails, err := p.flag("tails")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var logID uint64
	if v := p.get("log"); v != "" {
		if logID, err = parseBuildID(v); err != nil {
			s.writeError(w, r, &ParamError{Param: "log", Value: cut(v), Problem: "want a build number"})
			return
		}
	}
	offset, err := p.uint("offset")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := parseDecimal(v); err == nil {
			offset = max(offset, n)
		}
	}
	if r.Method == http.MethodHead { // the headers of a stream, without the stream
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		return
	}
	c, err := s.hub.subscribe(tails)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer s.hub.unsubscribe(c)
	s.stream(w, r, c, logID, int64(min(offset, 1<<62)))
}

// stream writes a client's events until it goes away or is dropped.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, c *client, logID uint64, offset int64) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	out := newDeadlineWriter(w, s.cfg.WriteTimeout)
	if out.write([]byte("retry: 2000\n\n")) != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var logs <-chan []byte
	if logID != 0 {
		ch := make(chan []byte)
		done := make(chan struct{})
		defer func() { cancel(); <-done }() // the follower ends with the stream
		go func() {
			defer close(done)
			s.followLog(ctx, logID, offset, ch)
		}()
		logs = ch
	}
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	for {
		var msg []byte
		select {
		case <-ctx.Done():
			return
		case <-c.gone:
			return // dropped for being slow, or the server stops
		case msg = <-c.msgs:
		case m, ok := <-logs:
			if !ok {
				logs = nil
				continue
			}
			msg = m
		case <-beat.C:
			msg = []byte(": keep-alive\n\n")
		}
		if out.write(msg) != nil {
			return
		}
	}
}

// followLog sends the log of build id from offset as log events, then an
// end event once the build has ended; it closes out when done.
func (s *Server) followLog(ctx context.Context, id uint64, offset int64, out chan<- []byte) {
	defer close(out)
	send := func(msg []byte) bool {
		select {
		case out <- msg:
			return true
		case <-ctx.Done():
			return false
		}
	}
	rc, start, err := s.cfg.Backend.OpenLog(ctx, id, LogOptions{Offset: offset, Follow: true})
	if err != nil {
		send(sseJSON("logerror", "", map[string]string{"error": err.Error()}))
		return
	}
	offset = start
	defer rc.Close()
	buf := make([]byte, logChunk)
	held := 0 // bytes of a character split by the last read
	for {
		n, err := rc.Read(buf[held:])
		n += held
		whole := utf8Cut(buf[:n])
		if err != nil { // nothing more will come: send what is left
			whole = n
		}
		if whole > 0 {
			offset += int64(whole)
			msg := sseJSON("log", strconv.FormatInt(offset, 10), map[string]string{"text": string(buf[:whole])})
			if !send(msg) {
				return
			}
		}
		held = copy(buf, buf[whole:n])
		if err != nil {
			if errors.Is(err, io.EOF) {
				send(sseJSON("end", "", map[string]string{"state": s.buildState(id)}))
			} else if ctx.Err() == nil {
				send(sseJSON("logerror", "", map[string]string{"error": fmt.Sprintf("log of build %d: %v", id, err)}))
			}
			return
		}
	}
}

// buildState returns the name of a build's state.
func (s *Server) buildState(id uint64) string {
	state := "unknown"
	s.cfg.Replica.Read(func(st *scheduler.State) {
		if b, ok := st.Build(scheduler.BuildID(id)); ok {
			state = b.State.String()
		}
	})
	return state
}
