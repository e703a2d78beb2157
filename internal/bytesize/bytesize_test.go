package bytesize

import "testing"

func TestIEC(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 900 << 20: "900.0 MiB",
		5 << 30: "5.0 GiB", 1 << 50: "1.0 PiB", 1<<64 - 1: "16.0 EiB",
	} {
		if got := IEC(n); got != want {
			t.Errorf("IEC(%d) = %q, want %q", n, got, want)
		}
	}
}
