# services.tbfg: a tbfg-node build farm node on NixOS.
#
#   imports = [ /path/to/tbfg-node/contrib/nixos/module.nix ];
#   services.tbfg = {
#     enable = true;
#     secretFile = "/etc/tbfg/mesh.secret";   # join the mesh on first start
#     peers = [ "/ip4/192.168.1.10/tcp/8760/p2p/12D3Koo…" ];
#     executor = "nix";
#   };
#
# The options are the node's flags, as in contrib/guix/tbfg.scm; `settings`
# becomes /etc/tbfg/config.toml for anything else. The unit's hardening is
# that of contrib/systemd/tbfg-node.service, where each choice is explained.
{ config, lib, pkgs, ... }:

let
  cfg = config.services.tbfg;
  inherit (lib) mkOption mkEnableOption mkIf types optional optionals
    concatMap escapeShellArgs;

  toml = pkgs.formats.toml { };

  repeat = flag: values: concatMap (v: [ flag v ]) values;
  maybe = flag: value: optionals (value != null) [ flag (toString value) ];

  args =
    (if cfg.secretFile != null
     then [ "join" "--secret-file" cfg.secretFile ]
     else [ "run" ])
    ++ [ "--data-dir" cfg.dataDir ]
    ++ optionals (cfg.settings != { }) [ "--config" (toml.generate "config.toml" cfg.settings) ]
    ++ repeat "--peer" cfg.peers
    ++ repeat "--listen" cfg.listen
    ++ [ "--executor" cfg.executor
         "--substitute-listen" cfg.substituteListen
         "--http-listen" cfg.httpListen ]
    ++ optional (!cfg.advertise) "--no-advertise"
    ++ optional (!cfg.mdns) "--no-mdns"
    ++ optional (!cfg.voter) "--voter=false"
    ++ maybe "--max-builds" cfg.maxBuilds
    ++ maybe "--max-load" cfg.maxLoad
    ++ repeat "--system" cfg.systems
    ++ repeat "--feature" cfg.features
    ++ maybe "--replicas" cfg.replicas
    ++ maybe "--store-max" cfg.storeMax
    ++ maybe "--min-free" cfg.minFree
    ++ cfg.extraArgs;
in
{
  options.services.tbfg = {
    enable = mkEnableOption "tbfg-node, a peer-to-peer build farm node";

    package = mkOption {
      type = types.package;
      description = "The tbfg-node package (build it from the checkout with buildGoModule).";
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/tbfg";
      description = "The node's state: mesh state, keys, store, logs (--data-dir).";
    };

    secretFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = ''
        File holding the mesh secret. With it the node joins the mesh on its
        first start and just runs later; without it, create the mesh once by
        hand with `tbfg-node init`.
      '';
    };

    peers = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Members dialled at start, as multiaddrs ending in /p2p/ID (--peer).";
    };

    listen = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "libp2p listen addresses (--listen); empty: TCP 8760 on all interfaces.";
    };

    executor = mkOption {
      type = types.enum [ "builtin" "nix" "guix" ];
      default = "nix";
      description = "How builds run (--executor): nix uses this machine's nix-daemon.";
    };

    substituteListen = mkOption {
      type = types.str;
      default = ":8761";
      description = "The substitute server's address (--substitute-listen), or off.";
    };

    httpListen = mkOption {
      type = types.str;
      default = "127.0.0.1:8767";
      description = "Status pages, JSON API and /metrics (--http-listen), or off.";
    };

    advertise = mkOption {
      type = types.bool;
      default = true;
      description = "Advertise the substitute server by DNS-SD (off: --no-advertise).";
    };

    mdns = mkOption {
      type = types.bool;
      default = true;
      description = "Find other nodes by mDNS on the LAN (off: --no-mdns).";
    };

    voter = mkOption {
      type = types.bool;
      default = true;
      description = "May become a Raft voter; false for machines that come and go (--voter).";
    };

    maxBuilds = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      description = "Builds run at once (--max-builds); null: the number of cores.";
    };

    maxLoad = mkOption {
      type = types.nullOr types.number;
      default = null;
      description = "Take no new builds at this 1-minute load average (--max-load).";
    };

    systems = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "System types built for (--system); empty: the machine's.";
    };

    features = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "System features offered to builds, e.g. kvm (--feature).";
    };

    replicas = mkOption {
      type = types.nullOr types.ints.positive;
      default = null;
      description = "How many members hold each store item (--replicas).";
    };

    storeMax = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "50G";
      description = "Bound of the node's store (--store-max).";
    };

    minFree = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "5G";
      description = "Free space kept on the store's disk (--min-free).";
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      description = "Any other settings, as config.toml keys (the flag names).";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Further command-line flags.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open TCP 8760 (libp2p) and 8761 (substitutes), and UDP 5353 (mDNS).";
    };
  };

  config = mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];

    networking.firewall = mkIf cfg.openFirewall {
      allowedTCPPorts = [ 8760 8761 ];
      allowedUDPPorts = optionals cfg.mdns [ 5353 ];
    };

    systemd.services.tbfg-node = {
      description = "tbfg-node, a peer-to-peer build farm node";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" "nix-daemon.service" ];
      path = optional (cfg.executor == "nix") config.nix.package;
      # The store is read-only to the service (ProtectSystem): the nix
      # executor goes through nix-daemon, as every user does.
      environment = lib.optionalAttrs (cfg.executor == "nix") { NIX_REMOTE = "daemon"; };
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/tbfg-node ${escapeShellArgs args}";
        Restart = "on-failure";
        RestartSec = "5s";
        KillMode = "mixed";
        TimeoutStopSec = 60;
        LimitNOFILE = 65536;
        StateDirectory = "tbfg";
        StateDirectoryMode = "0700";
        RuntimeDirectory = "tbfg";
        CapabilityBoundingSet = [ "CAP_SETUID" "CAP_SETGID" "CAP_SETFCAP" "CAP_CHOWN"
                                  "CAP_DAC_OVERRIDE" "CAP_FOWNER" "CAP_KILL" ];
        AmbientCapabilities = "";
        NoNewPrivileges = true;
        SecureBits = "noroot-locked";
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        Delegate = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectClock = true;
        RestrictNamespaces = "user mnt pid uts ipc net cgroup";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" ];
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
      };
    };
  };
}
