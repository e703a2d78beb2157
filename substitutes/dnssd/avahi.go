package dnssd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// Avahi's D-Bus names (avahi-daemon/org.freedesktop.Avahi.*.xml).
const (
	avahiName       = "org.freedesktop.Avahi"
	avahiServer     = "org.freedesktop.Avahi.Server"
	avahiGroup      = "org.freedesktop.Avahi.EntryGroup"
	avahiCollision  = "org.freedesktop.Avahi.CollisionError"
	busInterface    = "org.freedesktop.DBus"
	ifaceUnspec     = int32(-1) // AVAHI_IF_UNSPEC
	protoInet       = int32(0)  // AVAHI_PROTO_INET: IPv4 only
	maxRenames      = 32        // bound on alternative names tried in a row
	callTimeout     = 5 * time.Second
	closeTimeout    = 2 * time.Second
	signalQueueSize = 16
)

// Entry group states (AvahiEntryGroupState).
const (
	groupUncommitted int32 = iota
	groupRegistering
	groupEstablished
	groupCollision
	groupFailure
)

// avahiAd is a service registered as an Avahi entry group.
type avahiAd struct {
	conn      *dbus.Conn
	server    dbus.BusObject
	port      uint16
	ifindexes []int32
	logger    *slog.Logger

	signals chan *dbus.Signal
	stop    chan struct{}
	done    chan struct{}
	ready   chan error // first outcome of a registration, then nil

	mu    sync.Mutex
	name  string
	group dbus.ObjectPath
}

// startAvahi registers the service with the avahi-daemon on the system bus
// and waits until Avahi reports it established. Errors meaning "no Avahi
// here" wrap ErrNoAvahi.
func startAvahi(ctx context.Context, cfg Config) (*avahiAd, error) {
	conn, err := connectBus(ctx, cfg.DBusAddress)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoAvahi, err)
	}
	a := &avahiAd{
		conn:    conn,
		server:  conn.Object(avahiName, "/"),
		port:    uint16(cfg.Port),
		name:    cfg.Instance,
		signals: make(chan *dbus.Signal, signalQueueSize),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		ready:   make(chan error, 1),
		logger:  cfg.Logger,
	}
	if err := a.setup(ctx, cfg.Interfaces); err != nil {
		_ = conn.Close()
		return nil, err
	}
	go a.run()
	select {
	case err = <-a.ready:
	case <-ctx.Done():
		err = fmt.Errorf("wait for avahi to establish %q: %w", a.instance(), ctx.Err())
	}
	if err != nil {
		_ = a.close()
		return nil, err
	}
	return a, nil
}

// connectBus opens a private connection to the system bus at addr, or the
// default system bus when addr is empty, giving up when ctx ends. ctx is not
// handed to the connection: godbus would close it when ctx ends.
func connectBus(ctx context.Context, addr string) (*dbus.Conn, error) {
	type result struct {
		conn *dbus.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		if addr == "" {
			r.conn, r.err = dbus.ConnectSystemBus()
		} else {
			r.conn, r.err = dbus.Connect(addr)
		}
		ch <- r
	}()
	select {
	case r := <-ch:
		return r.conn, r.err
	case <-ctx.Done():
		go func() { // the dial finishes by itself; do not leak its connection
			if r := <-ch; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("connect to the system bus: %w", ctx.Err())
	}
}

// setup checks that Avahi runs, resolves the interfaces, subscribes to the
// signals and registers the service.
func (a *avahiAd) setup(ctx context.Context, ifaces []string) error {
	if err := a.checkDaemon(ctx); err != nil {
		return err
	}
	var err error
	if a.ifindexes, err = a.interfaceIndexes(ctx, ifaces); err != nil {
		return err
	}
	if err := a.subscribe(ctx); err != nil {
		return err
	}
	return a.register(ctx)
}

// checkDaemon asks the bus whether avahi-daemon owns its name, without
// starting it by bus activation, and then asks the daemon for its version.
func (a *avahiAd) checkDaemon(ctx context.Context) error {
	var has bool
	err := a.conn.BusObject().CallWithContext(ctx, busInterface+".NameHasOwner", 0, avahiName).Store(&has)
	if err != nil {
		return fmt.Errorf("%w: ask the bus: %w", ErrNoAvahi, err)
	}
	if !has {
		return fmt.Errorf("%w: nobody owns %s", ErrNoAvahi, avahiName)
	}
	var version string
	if err := a.server.CallWithContext(ctx, avahiServer+".GetVersionString", 0).Store(&version); err != nil {
		return fmt.Errorf("%w: %w", ErrNoAvahi, err)
	}
	return nil
}

// interfaceIndexes asks Avahi for the index of each interface name; no names
// means every interface.
func (a *avahiAd) interfaceIndexes(ctx context.Context, names []string) ([]int32, error) {
	if len(names) == 0 {
		return []int32{ifaceUnspec}, nil
	}
	var out []int32
	for _, name := range names {
		var idx int32
		err := a.server.CallWithContext(ctx, avahiServer+".GetNetworkInterfaceIndexByName", 0, name).Store(&idx)
		if err != nil {
			return nil, fmt.Errorf("avahi-daemon does not know interface %q: %w", name, err)
		}
		out = append(out, idx)
	}
	return out, nil
}

// subscribe routes entry group state changes and changes of the daemon's bus
// name (a restarted daemon has forgotten our group) to a.signals.
func (a *avahiAd) subscribe(ctx context.Context) error {
	err := a.conn.AddMatchSignalContext(ctx, dbus.WithMatchInterface(avahiGroup), dbus.WithMatchMember("StateChanged"))
	if err == nil {
		err = a.conn.AddMatchSignalContext(ctx, dbus.WithMatchInterface(busInterface),
			dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, avahiName))
	}
	if err != nil {
		return fmt.Errorf("subscribe to avahi signals: %w", err)
	}
	a.conn.Signal(a.signals)
	return nil
}

// register creates a new entry group and commits the service in it.
func (a *avahiAd) register(ctx context.Context) error {
	var path dbus.ObjectPath
	if err := a.server.CallWithContext(ctx, avahiServer+".EntryGroupNew", 0).Store(&path); err != nil {
		return fmt.Errorf("create avahi entry group: %w", err)
	}
	a.mu.Lock()
	a.group = path
	a.mu.Unlock()
	return a.addAndCommit(ctx)
}

// addAndCommit adds the service under the current name on every interface,
// taking Avahi's alternative names while the name collides with a service of
// this host, then commits the group.
func (a *avahiAd) addAndCommit(ctx context.Context) error {
	group := a.groupObject()
	for range maxRenames {
		err := a.addServices(ctx, group)
		if err == nil {
			if err := group.CallWithContext(ctx, avahiGroup+".Commit", 0).Err; err != nil {
				return fmt.Errorf("commit avahi entry group: %w", err)
			}
			return nil
		}
		var derr dbus.Error
		if !errors.As(err, &derr) || derr.Name != avahiCollision {
			return fmt.Errorf("add service %q to avahi: %w", a.instance(), err)
		}
		if err := a.rename(ctx, group); err != nil {
			return err
		}
	}
	return fmt.Errorf("add service to avahi: %d names in a row collided, last %q", maxRenames, a.instance())
}

// addServices adds the service on each interface, IPv4 only, with an empty
// TXT record, on the daemon's own host name.
func (a *avahiAd) addServices(ctx context.Context, group dbus.BusObject) error {
	name := a.instance()
	for _, idx := range a.ifindexes {
		call := group.CallWithContext(ctx, avahiGroup+".AddService", 0,
			idx, protoInet, uint32(0), name, ServiceType, "", "", a.port, [][]byte{})
		if call.Err != nil {
			return call.Err
		}
	}
	return nil
}

// rename takes Avahi's alternative for the current name and empties the
// group so that the service can be added again.
func (a *avahiAd) rename(ctx context.Context, group dbus.BusObject) error {
	old := a.instance()
	var alt string
	if err := a.server.CallWithContext(ctx, avahiServer+".GetAlternativeServiceName", 0, old).Store(&alt); err != nil {
		return fmt.Errorf("alternative name for %q: %w", old, err)
	}
	if err := group.CallWithContext(ctx, avahiGroup+".Reset", 0).Err; err != nil {
		return fmt.Errorf("reset avahi entry group: %w", err)
	}
	a.mu.Lock()
	a.name = alt
	a.mu.Unlock()
	a.logger.Warn("DNS-SD: instance name taken on the network, renamed", "old", old, "new", alt)
	return nil
}

func (a *avahiAd) groupObject() dbus.BusObject {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conn.Object(avahiName, a.group)
}

func (a *avahiAd) instance() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.name
}

// run follows the group's state until close: it renames on collisions and
// registers again when avahi-daemon restarts.
func (a *avahiAd) run() {
	defer close(a.done)
	for {
		select {
		case <-a.stop:
			return
		case sig, ok := <-a.signals:
			if !ok {
				a.report(errors.New("D-Bus connection closed"))
				return
			}
			a.handle(sig)
		}
	}
}

// handle acts on one signal.
func (a *avahiAd) handle(sig *dbus.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	switch sig.Name {
	case avahiGroup + ".StateChanged":
		a.mu.Lock()
		ours := sig.Path == a.group
		a.mu.Unlock()
		if ours && len(sig.Body) == 2 {
			state, _ := sig.Body[0].(int32)
			detail, _ := sig.Body[1].(string)
			a.stateChanged(ctx, state, detail)
		}
	case busInterface + ".NameOwnerChanged":
		if len(sig.Body) == 3 && sig.Body[2] == "" {
			a.logger.Warn("DNS-SD: avahi-daemon stopped; waiting for it to come back", "instance", a.instance())
		}
		if len(sig.Body) == 3 && sig.Body[2] != "" {
			a.logger.Info("DNS-SD: avahi-daemon (re)started, registering again", "instance", a.instance())
			if err := a.register(ctx); err != nil {
				a.logger.Warn("DNS-SD: register with restarted avahi-daemon", "err", err)
			}
		}
	}
}

// stateChanged handles a new state of our entry group.
func (a *avahiAd) stateChanged(ctx context.Context, state int32, detail string) {
	switch state {
	case groupEstablished:
		a.report(nil)
	case groupCollision:
		group := a.groupObject()
		err := a.rename(ctx, group)
		if err == nil {
			err = a.addAndCommit(ctx)
		}
		if err != nil {
			a.logger.Warn("DNS-SD: re-register after collision", "err", err)
			a.report(err)
		}
	case groupFailure:
		err := fmt.Errorf("avahi entry group failed: %s", detail)
		a.logger.Warn("DNS-SD: advertisement failed", "err", err)
		a.report(err)
	}
}

// report hands the first outcome to startAvahi; later ones are dropped.
func (a *avahiAd) report(err error) {
	select {
	case a.ready <- err:
	default:
	}
}

// close stops run, frees the group (Avahi sends goodbyes) and closes the
// connection, which would free the group too.
func (a *avahiAd) close() error {
	close(a.stop)
	<-a.done // run's D-Bus calls are bounded by callTimeout
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := a.groupObject().CallWithContext(ctx, avahiGroup+".Free", 0).Err
	if cerr := a.conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("withdraw avahi service: %w", err)
	}
	return nil
}
