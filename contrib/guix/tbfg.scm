;;; tbfg-node for Guix System: a package and a service.
;;;
;;; Use it from a checkout of tbfg-node:
;;;
;;;   (load "/path/to/tbfg-node/contrib/guix/tbfg.scm")   ; in your system config
;;;   (service tbfg-service-type
;;;            (tbfg-configuration
;;;              (secret-file "/etc/tbfg/mesh.secret")
;;;              (peers '("/ip4/192.168.1.10/tcp/8760/p2p/12D3Koo…"))))
;;;
;;; The package builds from the checkout this file is in, with its Go modules
;;; vendored first: run `go mod vendor` in the checkout before `guix system
;;; reconfigure`, since builds have no network to fetch modules.
;;;
;;; The service mirrors guix-publish-service-type: a record whose fields are
;;; the node's flags, a shepherd service with a log file, a system user and
;;; group, and an activation that creates the data dir.

(define-module (tbfg)
  #:use-module (guix gexp)
  #:use-module (guix packages)
  #:use-module (guix records)
  #:use-module (guix build-system go)
  #:use-module ((guix licenses) #:prefix license:)
  #:use-module (gnu packages golang)
  #:use-module (gnu packages admin)
  #:use-module (gnu services)
  #:use-module (gnu services shepherd)
  #:use-module (gnu system shadow)
  #:use-module (ice-9 match)
  #:use-module (srfi srfi-1)
  #:export (tbfg-node
            tbfg-configuration
            tbfg-configuration?
            tbfg-service-type))

(define %checkout
  ;; The tbfg-node checkout holding this file: contrib/guix/..
  (dirname (dirname (dirname (current-filename)))))

(define tbfg-node
  (package
    (name "tbfg-node")
    (version "0.3.0")
    (source (local-file %checkout "tbfg-node-checkout"
                        #:recursive? #t
                        #:select? (lambda (file stat)
                                    (not (string-contains file "/.git")))))
    (build-system go-build-system)
    (arguments
     (list #:import-path "github.com/tbfg/tbfg-node/cmd/tbfg-node"
           #:unpack-path "github.com/tbfg/tbfg-node"
           #:install-source? #f
           #:tests? #f                  ;the tests need root and namespaces
           #:build-flags
           #~(list "-mod=vendor"
                   (string-append "-ldflags=-X github.com/tbfg/tbfg-node"
                                  "/internal/version.Version=" #$version))))
    (home-page "https://github.com/tbfg/tbfg-node")
    (synopsis "Peer-to-peer build farm for Guix")
    (description
     "tbfg-node runs one node of a build farm on each build host.  The nodes
find each other on the LAN, elect a leader that holds the build queue, build
derivations, and publish the outputs as signed substitutes that guix-daemon
finds by itself.")
    (license license:gpl3+)))

(define-record-type* <tbfg-configuration>
  tbfg-configuration make-tbfg-configuration
  tbfg-configuration?
  (package           tbfg-configuration-package       ;file-like
                     (default tbfg-node))
  (user              tbfg-configuration-user          ;string
                     (default "tbfg"))
  (group             tbfg-configuration-group         ;string
                     (default "tbfg"))
  (data-dir          tbfg-configuration-data-dir      ;string
                     (default "/var/lib/tbfg"))
  (log-file          tbfg-configuration-log-file      ;string
                     (default "/var/log/tbfg-node.log"))
  (config-file       tbfg-configuration-config-file   ;#f | string | file-like
                     (default #f))
  ;; With a secret file the node joins the mesh on its first start (and just
  ;; runs later); without one, create the mesh once with `tbfg-node init`.
  (secret-file       tbfg-configuration-secret-file   ;#f | string
                     (default #f))
  (peers             tbfg-configuration-peers         ;list of multiaddrs
                     (default '()))
  (listen            tbfg-configuration-listen        ;list of strings
                     (default '()))
  (executor          tbfg-configuration-executor      ;'guix | 'builtin | 'nix
                     (default 'guix))
  (guix              tbfg-configuration-guix          ;#f | file-like
                     (default #f))
  (substitute-listen tbfg-configuration-substitute-listen
                     (default ":8761"))
  (http-listen       tbfg-configuration-http-listen
                     (default "127.0.0.1:8767"))
  (advertise?        tbfg-configuration-advertise?    ;DNS-SD for guix-daemon
                     (default #t))
  (mdns?             tbfg-configuration-mdns?
                     (default #t))
  (voter?            tbfg-configuration-voter?
                     (default #t))
  (max-builds        tbfg-configuration-max-builds    ;#f | integer
                     (default #f))
  (max-load          tbfg-configuration-max-load      ;#f | number
                     (default #f))
  (systems           tbfg-configuration-systems       ;list of strings
                     (default '()))
  (features          tbfg-configuration-features      ;list of strings
                     (default '()))
  (replicas          tbfg-configuration-replicas      ;#f | integer
                     (default #f))
  (store-max         tbfg-configuration-store-max     ;#f | "50G"
                     (default #f))
  (min-free          tbfg-configuration-min-free      ;#f | "5G"
                     (default #f))
  (extra-options     tbfg-configuration-extra-options ;list of strings
                     (default '())))

(define (tbfg-command config)
  "Return the command line of the node for CONFIG, as a gexp list."
  (match-record config <tbfg-configuration>
    (package data-dir config-file secret-file peers listen executor guix
     substitute-listen http-listen advertise? mdns? voter? max-builds max-load
     systems features replicas store-max min-free extra-options)
    (define (repeat flag values)
      (append-map (lambda (v) (list flag v)) values))
    (define (maybe flag value)
      (if value (list flag (if (number? value) (number->string value) value)) '()))
    #~(list #$(file-append package "/bin/tbfg-node")
            #$@(if secret-file
                   (list "join" "--secret-file" secret-file)
                   (list "run"))
            "--data-dir" #$data-dir
            #$@(if config-file (list "--config" config-file) '())
            #$@(repeat "--peer" peers)
            #$@(repeat "--listen" listen)
            "--executor" #$(symbol->string executor)
            #$@(if guix (list "--guix" (file-append guix "/bin/guix")) '())
            "--substitute-listen" #$substitute-listen
            "--http-listen" #$http-listen
            #$@(if advertise? '() '("--no-advertise"))
            #$@(if mdns? '() '("--no-mdns"))
            #$@(if voter? '() '("--voter=false"))
            #$@(maybe "--max-builds" max-builds)
            #$@(maybe "--max-load" max-load)
            #$@(repeat "--system" systems)
            #$@(repeat "--feature" features)
            #$@(maybe "--replicas" replicas)
            #$@(maybe "--store-max" store-max)
            #$@(maybe "--min-free" min-free)
            #$@extra-options)))

(define (tbfg-shepherd-service config)
  (match-record config <tbfg-configuration>
    (user group log-file)
    (list (shepherd-service
           (documentation "Run a tbfg-node build farm node.")
           (provision '(tbfg-node))
           ;; Not avahi-daemon: the node advertises through it when it runs,
           ;; and answers mDNS itself when it does not.
           (requirement '(user-processes networking guix-daemon))
           (start #~(make-forkexec-constructor
                     #$(tbfg-command config)
                     #:user #$user
                     #:group #$group
                     #:log-file #$log-file))
           (stop #~(make-kill-destructor))
           (respawn? #t)))))

(define (tbfg-accounts config)
  (match-record config <tbfg-configuration> (user group)
    (if (string=? user "root")
        '()
        (list (user-group (name group) (system? #t))
              (user-account
               (name user)
               (group group)
               (system? #t)
               (comment "tbfg-node build farm node")
               (home-directory "/var/empty")
               (shell (file-append shadow "/sbin/nologin")))))))

(define (tbfg-activation config)
  "Create the data dir, 0700 since it holds the mesh secret, owned by the
service's user."
  (match-record config <tbfg-configuration> (user data-dir)
    (with-imported-modules '((guix build utils))
      #~(begin
          (use-modules (guix build utils))
          (mkdir-p #$data-dir)
          (let ((pw (getpwnam #$user)))
            (chown #$data-dir (passwd:uid pw) (passwd:gid pw)))
          (chmod #$data-dir #o700)))))

(define tbfg-service-type
  (service-type
   (name 'tbfg)
   (extensions
    (list (service-extension shepherd-root-service-type tbfg-shepherd-service)
          (service-extension account-service-type tbfg-accounts)
          (service-extension activation-service-type tbfg-activation)
          (service-extension profile-service-type
                             (compose list tbfg-configuration-package))))
   (default-value (tbfg-configuration))
   (description
    "Run @command{tbfg-node}, one node of a peer-to-peer build farm whose
outputs guix-daemon finds as substitutes.  With the default @code{guix}
executor the node runs as its own user and builds through guix-daemon; the
@code{builtin} executor runs each build as a host uid of its own only when
the node runs as @code{root}.")))
