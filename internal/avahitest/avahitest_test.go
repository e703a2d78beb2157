package avahitest

import (
	"reflect"
	"testing"
)

func TestParseBrowse(t *testing.T) {
	out := "+;eth0;IPv4;guix-publish-vm;_guix_publish._tcp;local\n" +
		"=;eth0;IPv4;guix-publish-vm\\032\\0352;_guix_publish._tcp;local;tbfg-h2.local;198.18.0.2;8761;\n" +
		"=;eth0;IPv4;short\n"
	want := []Service{{Interface: "eth0", Protocol: "IPv4", Name: "guix-publish-vm #2", Host: "tbfg-h2.local", Address: "198.18.0.2", Port: 8761}}
	if got := ParseBrowse(out); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseBrowse = %+v, want %+v", got, want)
	}
}
