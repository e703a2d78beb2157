package guiletest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of the guile program when it can load
// (gcrypt pk-crypto). Otherwise it skips t, or fails it under CI.
func Require(t testing.TB) string {
	t.Helper()
	guile, err := exec.LookPath("guile")
	if err == nil {
		err = exec.Command(guile, "--no-auto-compile", "-c", "(use-modules (gcrypt pk-crypto))").Run()
	}
	if err != nil {
		msg := fmt.Sprintf("libgcrypt through guile is not available (%v): apt-get install guile-3.0 guile-gcrypt", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return guile
}
