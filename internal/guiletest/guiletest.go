package guiletest

import (
	"os/exec"
	"testing"

	"github.com/tbfg/tbfg-node/internal/citest"
)

// Require returns the path of the guile program when it can load
// (gcrypt pk-crypto). Otherwise it skips t, or fails it under CI=true
// (citest).
func Require(t testing.TB) string {
	t.Helper()
	guile, err := exec.LookPath("guile")
	if err == nil {
		err = exec.Command(guile, "--no-auto-compile", "-c", "(use-modules (gcrypt pk-crypto))").Run()
	}
	if err != nil {
		citest.Missing(t, "libgcrypt through guile is not available (%v): install the Debian packages guile-3.0 and guile-gcrypt", err)
	}
	return guile
}
