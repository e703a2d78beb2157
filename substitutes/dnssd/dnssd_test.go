package dnssd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigNormalize(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{Port: 8761}, ""},
		{"explicit", Config{Instance: "guix-publish-x", Port: 1, Interfaces: []string{"lo"}}, ""},
		{"no port", Config{Instance: "x"}, "port 0"},
		{"port too big", Config{Instance: "x", Port: 70000}, "port 70000"},
		{"long instance", Config{Instance: strings.Repeat("a", 64), Port: 1}, "1 to 63 bytes"},
		{"control character", Config{Instance: "a\nb", Port: 1}, "not printable"},
		{"bad UTF-8", Config{Instance: "a\xffb", Port: 1}, "UTF-8"},
		{"unknown interface", Config{Instance: "x", Port: 1, Interfaces: []string{"nosuchif0"}}, `interface "nosuchif0"`},
		{"unknown backend", Config{Instance: "x", Port: 1, Backend: "mdnsd"}, "unknown backend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.normalize()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(got.Instance, InstancePrefix) && tt.cfg.Instance == "" {
					t.Fatalf("default instance %q lacks %q", got.Instance, InstancePrefix)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadConfig) {
				t.Fatalf("error %v, want ErrBadConfig mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultInstance(t *testing.T) {
	name, err := DefaultInstance()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	want := InstancePrefix + host
	if len(want) > maxInstanceLen {
		want = want[:maxInstanceLen]
	}
	if name != want {
		t.Fatalf("DefaultInstance() = %q, want %q", name, want)
	}
}

// TestAvahiAbsent checks that the avahi backend reports ErrNoAvahi, and that
// the automatic choice falls back, when there is no bus or a bus without
// avahi-daemon. The zeroconf fallback is asked for an interface without
// IPv4 address so that nothing is sent from this namespace.
func TestAvahiAbsent(t *testing.T) {
	missing := "unix:path=" + filepath.Join(t.TempDir(), "no-bus")
	tests := []struct {
		name string
		bus  func(t *testing.T) string
	}{
		{"no bus", func(*testing.T) string { return missing }},
		{"bus without avahi", func(t *testing.T) string { return startBus(t, nil, t.TempDir()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := tt.bus(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := Advertise(ctx, Config{Instance: "x", Port: 1, Backend: BackendAvahi, DBusAddress: bus})
			if !errors.Is(err, ErrNoAvahi) {
				t.Fatalf("avahi backend: %v, want ErrNoAvahi", err)
			}
			_, err = Advertise(ctx, Config{Instance: "x", Port: 1, DBusAddress: bus, Interfaces: []string{"lo"}})
			if !errors.Is(err, ErrNoAddress) {
				t.Fatalf("automatic choice: %v, want the zeroconf backend's ErrNoAddress", err)
			}
		})
	}
}
