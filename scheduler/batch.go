package scheduler

import "fmt"

// SplitSubmit orders c's derivations inputs first and splits them into
// Submit commands of at most maxDrvs derivations (and at most maxDrvs items)
// each. Applied in order, every command then refers only to derivations the
// state already knows or that come earlier in the same command. Inputs that
// are not in c must already be known to the state. The commands share c's
// time, submitter, node, priority and tags.
func SplitSubmit(c Submit, maxDrvs int) ([]Submit, error) {
	if maxDrvs <= 0 {
		return nil, fmt.Errorf("%w: batch size %d", ErrInvalid, maxDrvs)
	}
	sorted, err := SortDerivations(c.Derivations)
	if err != nil {
		return nil, err
	}
	var out []Submit
	for i := 0; i < len(sorted) || i < len(c.Items); i += maxDrvs {
		part := c
		part.Derivations = sorted[min(i, len(sorted)):min(i+maxDrvs, len(sorted))]
		part.Items = c.Items[min(i, len(c.Items)):min(i+maxDrvs, len(c.Items))]
		out = append(out, part)
	}
	return out, nil
}

// SortDerivations returns drvs in an order where each derivation comes after
// its inputs among drvs, keeping the given order where it already allows.
// It fails on a duplicate path or a cycle.
func SortDerivations(drvs []Derivation) ([]Derivation, error) {
	pos := make(map[string]int, len(drvs))
	for i, d := range drvs {
		if _, dup := pos[d.Path]; dup {
			return nil, fmt.Errorf("%w: derivation %s listed twice", ErrInvalid, d.Path)
		}
		pos[d.Path] = i
	}
	const (
		unvisited = iota
		visiting
		done
	)
	mark := make([]uint8, len(drvs))
	out := make([]Derivation, 0, len(drvs))
	// Depth-first search with an explicit stack, so a deep chain of
	// derivations does not need an equally deep recursion.
	type frame struct{ i, next int }
	for root := range drvs {
		if mark[root] != unvisited {
			continue
		}
		stack := []frame{{i: root}}
		mark[root] = visiting
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			ins := drvs[top.i].Inputs
			if top.next < len(ins) {
				j, ok := pos[ins[top.next].Drv]
				top.next++
				if !ok || mark[j] == done {
					continue
				}
				if mark[j] == visiting {
					return nil, fmt.Errorf("%w: through %s", ErrCycle, drvs[j].Path)
				}
				mark[j] = visiting
				stack = append(stack, frame{i: j})
				continue
			}
			mark[top.i] = done
			out = append(out, drvs[top.i])
			stack = stack[:len(stack)-1]
		}
	}
	return out, nil
}
