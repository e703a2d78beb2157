;; Reads one s-expression per line on standard input and prints what
;; libgcrypt's gcry_sexp_sprint (GCRYSEXP_FMT_ADVANCED) makes of it, each
;; result preceded by its length in bytes and a newline. Used by
;; interop_test.go: guile --no-auto-compile sprint.scm < input
(use-modules (gcrypt pk-crypto) (ice-9 rdelim))

(set-port-encoding! (current-output-port) "ISO-8859-1")

(let loop ()
  (let ((line (read-line)))
    (unless (eof-object? line)
      (let ((text (canonical-sexp->string (string->canonical-sexp line))))
        (format #t "~a~%~a" (string-length text) text))
      (loop))))
