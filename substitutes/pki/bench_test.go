package pki

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"
)

// benchSignature measures op against ref, crypto/ed25519 doing the same job
// in the same run, and reports its time over ours as x-faster-than-ed25519
// (below 1: ours is slower).
func benchSignature(b *testing.B, op, ref func()) {
	start := time.Now()
	for range b.N {
		op()
	}
	ours := time.Since(start)
	b.StopTimer()
	start = time.Now()
	for range b.N {
		ref()
	}
	b.ReportMetric(float64(time.Since(start))/float64(ours), "x-faster-than-ed25519")
}

func benchKeys(b *testing.B) (*SecretKey, ed25519.PrivateKey, []byte) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := splitNarinfo(b, readTestdata(b, "hello-2.12.2.narinfo"))
	return k, ek, body
}

// BenchmarkSignField signs a real narinfo body; the reference is an Ed25519
// signature over the same bytes (what Nix-style signing costs).
func BenchmarkSignField(b *testing.B) {
	k, ek, body := benchKeys(b)
	benchSignature(b, func() {
		if _, err := SignField(body, "bench", k); err != nil {
			b.Fatal(err)
		}
	}, func() { ed25519.Sign(ek, body) })
}

// BenchmarkVerifyField verifies a real narinfo signature; the reference is an
// Ed25519 verification over the same bytes.
func BenchmarkVerifyField(b *testing.B) {
	k, ek, body := benchKeys(b)
	field, err := SignField(body, "bench", k)
	if err != nil {
		b.Fatal(err)
	}
	acl := &ACL{Keys: []PublicKey{k.Public}}
	sig := ed25519.Sign(ek, body)
	pub := ek.Public().(ed25519.PublicKey)
	benchSignature(b, func() {
		if VerifyField(body, field, acl) != Valid {
			b.Fatal("invalid")
		}
	}, func() { ed25519.Verify(pub, body, sig) })
}
