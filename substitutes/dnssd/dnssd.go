package dnssd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// ServiceType is the DNS-SD service type of a Guix substitute server.
const ServiceType = "_guix_publish._tcp"

// InstancePrefix starts the instance name that guix publish uses.
const InstancePrefix = "guix-publish-"

// maxInstanceLen is the longest instance name: one DNS label.
const maxInstanceLen = 63

// Errors returned by this package.
var (
	// ErrNoAvahi is returned when the avahi backend is asked for and no
	// avahi-daemon answers on the system bus.
	ErrNoAvahi = errors.New("no avahi-daemon on the D-Bus system bus")
	// ErrBadConfig is wrapped by every error about an invalid Config.
	ErrBadConfig = errors.New("invalid DNS-SD configuration")
	// ErrNoAddress is returned by the zeroconf backend when the interfaces
	// have no IPv4 address to advertise.
	ErrNoAddress = errors.New("no IPv4 address to advertise")
)

// Backend names a way of advertising.
type Backend string

// The backends. BackendAuto takes avahi when it runs, else zeroconf.
const (
	BackendAuto     Backend = ""
	BackendAvahi    Backend = "avahi"
	BackendZeroconf Backend = "zeroconf"
)

// Config says what to advertise and where.
type Config struct {
	// Instance is the service instance name; empty means DefaultInstance().
	Instance string
	// Port is the substitute server's TCP port.
	Port int
	// Interfaces are the names of the network interfaces to advertise on;
	// empty means every interface that is up and multicast-capable.
	Interfaces []string
	// HostName is the host part of the zeroconf backend's records (as in
	// <HostName>.local); empty means this host's name. Avahi uses its own.
	HostName string
	// Backend forces a backend; the zero value chooses.
	Backend Backend
	// DBusAddress is the address of the system bus; empty means
	// $DBUS_SYSTEM_BUS_ADDRESS or the standard system bus socket.
	DBusAddress string
	// Logger receives the backend choice and later renames; nil discards.
	Logger *slog.Logger
}

// DefaultInstance returns guix-publish-<hostname>, the name guix publish
// advertises, shortened to fit a DNS label.
func DefaultInstance() (string, error) {
	host, err := shortHostname()
	if err != nil {
		return "", err
	}
	name := InstancePrefix + host
	for len(name) > maxInstanceLen {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name, nil
}

// shortHostname is the first label of this host's name.
func shortHostname() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("host name: %w", err)
	}
	host, _, _ = strings.Cut(host, ".")
	if host == "" {
		return "", fmt.Errorf("host name is empty")
	}
	return host, nil
}

// normalize fills in defaults and checks c.
func (c Config) normalize() (Config, error) {
	var err error
	if c.Instance == "" {
		if c.Instance, err = DefaultInstance(); err != nil {
			return c, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
	}
	if err := validInstance(c.Instance); err != nil {
		return c, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if c.Port <= 0 || c.Port > 65535 {
		return c, fmt.Errorf("%w: port %d is not in 1-65535", ErrBadConfig, c.Port)
	}
	switch c.Backend {
	case BackendAuto, BackendAvahi, BackendZeroconf:
	default:
		return c, fmt.Errorf("%w: unknown backend %q (want avahi or zeroconf)", ErrBadConfig, c.Backend)
	}
	for _, name := range c.Interfaces {
		if _, err := net.InterfaceByName(name); err != nil {
			return c, fmt.Errorf("%w: interface %q: %w", ErrBadConfig, name, err)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// validInstance checks an instance name: 1 to 63 bytes of printable UTF-8.
func validInstance(name string) error {
	if name == "" || len(name) > maxInstanceLen {
		return fmt.Errorf("instance name %q must have 1 to %d bytes", name, maxInstanceLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("instance name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("instance name %q: character %q is not printable", name, r)
		}
	}
	return nil
}

// advertiser is one backend's running advertisement.
type advertiser interface {
	instance() string
	close() error
}

// Advertisement is a service being advertised; Close withdraws it.
type Advertisement struct {
	backend Backend
	impl    advertiser

	closeOnce sync.Once
	closeErr  error
}

// Advertise starts advertising the substitute server described by cfg and
// returns once the service is announced (for avahi: established, after any
// rename). ctx bounds only this start; the advertisement lasts until Close.
func Advertise(ctx context.Context, cfg Config) (*Advertisement, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if cfg.Backend != BackendZeroconf {
		impl, err := startAvahi(ctx, cfg)
		switch {
		case err == nil:
			cfg.Logger.Info("DNS-SD: advertising through avahi-daemon", "instance", impl.instance(), "port", cfg.Port)
			return &Advertisement{backend: BackendAvahi, impl: impl}, nil
		case cfg.Backend == BackendAvahi || !errors.Is(err, ErrNoAvahi):
			return nil, fmt.Errorf("advertise %s through avahi: %w", ServiceType, err)
		}
		cfg.Logger.Info("DNS-SD: no avahi-daemon, answering mDNS ourselves", "reason", err)
	}
	impl, err := startZeroconf(cfg)
	if err != nil {
		return nil, fmt.Errorf("advertise %s: %w", ServiceType, err)
	}
	cfg.Logger.Info("DNS-SD: advertising with zeroconf", "instance", impl.instance(), "port", cfg.Port)
	return &Advertisement{backend: BackendZeroconf, impl: impl}, nil
}

// Backend reports which backend advertises the service.
func (a *Advertisement) Backend() Backend { return a.backend }

// Instance is the instance name currently advertised: the configured one, or
// Avahi's alternative after a name collision.
func (a *Advertisement) Instance() string { return a.impl.instance() }

// Close withdraws the service (sending mDNS goodbyes) and releases what the
// backend holds. It is idempotent and returns within a few seconds.
func (a *Advertisement) Close() error {
	a.closeOnce.Do(func() { a.closeErr = a.impl.close() })
	return a.closeErr
}
