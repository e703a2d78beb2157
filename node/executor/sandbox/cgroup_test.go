package sandbox

import "testing"

func TestCgroup2Mount(t *testing.T) {
	tests := []struct {
		name, mountinfo, want string
	}{
		{"unified", "26 1 254:0 / / rw - ext4 /dev/vda rw\n30 22 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup"},
		{"hybrid", "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified"},
		{"v1 only", "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n", ""},
		{"not at its root", "40 30 0:37 /sub /mnt/cg rw - cgroup2 cgroup2 rw\n", ""},
		{"escaped space", "40 30 0:37 / /mnt/my\\040cgroup rw - cgroup2 cgroup2 rw\n", "/mnt/my cgroup"},
		{"garbage", "x\n\n - \n", ""},
	}
	for _, tt := range tests {
		if got := cgroup2Mount([]byte(tt.mountinfo)); got != tt.want {
			t.Errorf("%s: cgroup2Mount = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestUnifiedPath(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"0::/system.slice/tbfg.service\n", "/system.slice/tbfg.service", true},
		{"12:pids:/x\n1:name=systemd:/\n0::/\n", "/", true},
		{"4:memory:/x\n", "", false},
	}
	for _, tt := range tests {
		got, ok := unifiedPath([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("unifiedPath(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
