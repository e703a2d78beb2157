package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// reclaim gives the outputs a build made to the node, once no process of
// the build is left to race with: owned by the node, directories open to
// it, and no extended attributes (ACLs that would let the build's uid
// back in, capabilities). Outputs the build did not make are skipped.
func reclaim(spec *Spec) error {
	uid, gid := os.Geteuid(), os.Getegid()
	for _, base := range spec.Outputs {
		root := spec.OutputPath(base)
		if _, err := os.Lstat(root); errors.Is(err, os.ErrNotExist) {
			continue
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := os.Lchown(p, uid, gid); err != nil {
				return err
			}
			if d.IsDir() {
				// Before WalkDir reads it: the build may have left it 0000.
				if err := os.Chmod(p, 0o755); err != nil {
					return err
				}
			}
			return removeXattrs(p)
		})
		if err != nil {
			return fmt.Errorf("reclaim output %s: %w", base, err)
		}
	}
	return nil
}

// removeXattrs removes the extended attributes of p that a build may have
// set; those of the host's security modules stay.
func removeXattrs(p string) error {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if errors.Is(err, unix.ERANGE) { // more than buf holds: ask for the size
		if n, err = unix.Llistxattr(p, nil); err == nil {
			buf = make([]byte, n)
			n, err = unix.Llistxattr(p, buf)
		}
	}
	if err != nil {
		return fmt.Errorf("list extended attributes of %s: %w", p, err)
	}
	for name := range strings.SplitSeq(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || name == "security.selinux" || name == "system.nfs4_acl" {
			continue
		}
		if err := unix.Lremovexattr(p, name); err != nil && !errors.Is(err, unix.ENODATA) {
			return fmt.Errorf("remove extended attribute %s of %s: %w", name, p, err)
		}
	}
	return nil
}
