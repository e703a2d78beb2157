package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tbfg/tbfg-node/internal/avahitest"
	"github.com/tbfg/tbfg-node/internal/citest"
)

// requireTools skips the test unless the named programs, given with their
// Debian packages, are installed; under CI=true it fails instead (citest).
func requireTools(t *testing.T, toolPackages ...string) {
	t.Helper()
	for i := 0; i+1 < len(toolPackages); i += 2 {
		citest.Tool(t, toolPackages[i], toolPackages[i+1])
	}
}

// startAvahi runs a private system bus and an avahi-daemon on it in h's
// namespace, as a Guix System machine has, waits until the daemon runs, and
// returns the bus address. Both are killed at cleanup.
func startAvahi(t *testing.T, h *host) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), h.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bus := avahitest.StartBus(t, h.ns.Command, dir)
	avahitest.StartAvahi(t, h.ns.Command, bus, dir, "tbfg-"+h.name)
	return bus
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// browse runs avahi-browse -rpt for type in h's namespace against the
// avahi-daemon on bus.
func browse(h *host, bus, typ string) ([]avahitest.Service, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := h.ns.Command(ctx, "avahi-browse", "-rpt", typ)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: avahi-browse: %w\n%s", h.name, err, out)
	}
	return avahitest.ParseBrowse(string(out)), nil
}
