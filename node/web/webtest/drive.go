package webtest

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"

	"github.com/tbfg/tbfg-node/scheduler"
)

// The helpers below apply real commands; each fails the way Apply does.

// Join makes node a member building systems, with slots parallel builds.
func (b *Backend) Join(node string, slots int, systems ...string) error {
	_, err := b.Apply(&scheduler.NodeJoined{Time: b.Now(), Node: node, Key: "key-" + node, Systems: systems, MaxBuilds: slots})
	return err
}

// Submit submits derivations, inputs first, and returns their build ids.
func (b *Backend) Submit(drvs ...scheduler.Derivation) ([]uint64, error) {
	resp, err := b.Apply(&scheduler.Submit{Time: b.Now(), Submitter: "webtest", Derivations: drvs})
	if err != nil {
		return nil, err
	}
	ids, err := scheduler.DecodeSubmitResponse(resp)
	out := make([]uint64, len(ids))
	for i, id := range ids {
		out[i] = uint64(id)
	}
	return out, err
}

// Allocate gives build id to node.
func (b *Backend) Allocate(id uint64, node string) error {
	_, err := b.Apply(&scheduler.Allocate{Time: b.Now(), Allocations: []scheduler.Allocation{{Build: scheduler.BuildID(id), Node: node}}})
	return err
}

// Start says node started build id.
func (b *Backend) Start(id uint64, node string) error {
	_, err := b.Apply(&scheduler.Started{Time: b.Now(), Build: scheduler.BuildID(id), Node: node})
	return err
}

// Run allocates build id to node and starts it.
func (b *Backend) Run(id uint64, node string) error {
	if err := b.Allocate(id, node); err != nil {
		return err
	}
	return b.Start(id, node)
}

// Succeed says node built build id; its outputs become available.
func (b *Backend) Succeed(id uint64, node string) error {
	var outs []scheduler.Item
	b.FSM.Read(func(s *scheduler.State) {
		info, _ := s.Build(scheduler.BuildID(id))
		for _, o := range info.Outputs {
			outs = append(outs, Item(o.Path))
		}
	})
	_, err := b.Apply(&scheduler.Succeeded{Time: b.Now(), Build: scheduler.BuildID(id), Node: node, Outputs: outs})
	return err
}

// Fail says build id failed on node for reason.
func (b *Backend) Fail(id uint64, node string, reason scheduler.Reason, msg string) error {
	_, err := b.Apply(&scheduler.Failed{Time: b.Now(), Build: scheduler.BuildID(id), Node: node, Reason: reason, Message: msg})
	return err
}

// StorePath makes a well-formed store path for name.
func StorePath(name string) string {
	const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(h.Sum64(), 1))
	var hash [32]byte
	for i := range hash {
		hash[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return "/gnu/store/" + string(hash[:]) + "-" + name
}

// Drv makes a derivation named name for system with one output "out" that
// depends on the "out" output of each input (derivations made by Drv).
func Drv(name, system string, inputs ...string) scheduler.Derivation {
	d := scheduler.Derivation{Path: StorePath(name + ".drv"), System: system,
		Outputs: []scheduler.Output{{Name: "out", Path: StorePath(name)}}}
	for _, in := range inputs {
		d.Inputs = append(d.Inputs, scheduler.Input{Drv: StorePath(in + ".drv"), Outputs: []string{"out"}})
	}
	return d
}

// Item is the narinfo record of a path as a builder would report it.
func Item(path string) scheduler.Item {
	return scheduler.Item{Path: path, NarHash: "sha256:" + StorePath(path)[11:43] + "0000000000000000000", NarSize: 4096,
		Narinfo: "StorePath: " + path + "\n", Signature: "sig"}
}

// Populate submits n independent builds over systems, in commands of at
// most 1000, and ends a share of them: every tenth builds on node and
// succeeds, every fiftieth fails. It returns the ids in order.
func (b *Backend) Populate(n int, node string, systems ...string) ([]uint64, error) {
	var ids []uint64
	for start := 0; start < n; start += 1000 {
		var drvs []scheduler.Derivation
		for i := start; i < min(n, start+1000); i++ {
			drvs = append(drvs, Drv(fmt.Sprintf("pkg-%d", i), systems[i%len(systems)]))
		}
		got, err := b.Submit(drvs...)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	for i, id := range ids {
		if i%10 != 0 && i%50 != 1 {
			continue
		}
		if err := b.Run(id, node); err != nil {
			return nil, err
		}
		var err error
		if i%10 == 0 {
			err = b.Succeed(id, node)
		} else {
			err = b.Fail(id, node, scheduler.ReasonBuildError, "builder exited with status 1")
		}
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}
