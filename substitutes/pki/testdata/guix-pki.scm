;; Signs and verifies narinfo signatures with libgcrypt, through guile-gcrypt,
;; the way Guix does (guix/pki.scm, guix/narinfo.scm, guix/scripts/publish.scm
;; and guix/scripts/archive.scm). Used by interop_test.go as an independent
;; implementation.
;;
;; Protocol: one request per line on standard input, one reply per line on
;; standard output. Byte strings travel as base64.
;;
;;   genkey                      -> ok PUB SEC   (files as `guix archive --generate-key` writes them)
;;   sign PUB SEC HOST BODY      -> ok FIELD     (the Signature value `guix publish` writes)
;;   verify ACL BODY FIELD       -> ok STATUS    (Guix's signature status word)
;;   reprint FILE                -> ok FILE      (the s-expression in FILE as Guix writes it)
;;
;; Any failure replies `error DESCRIPTION`.

(use-modules (gcrypt pk-crypto)
             (gcrypt hash)
             (gcrypt base64)
             (rnrs bytevectors)
             (ice-9 rdelim)
             (ice-9 match))

;; Guix reads and writes key files, ACLs and signature payloads as UTF-8
;; text whose characters are the bytes libgcrypt prints.
(define (text->sexp bv)
  (string->canonical-sexp (utf8->string bv)))

(define (sexp->text sexp)
  (string->utf8 (canonical-sexp->string sexp)))

(define (generate)
  (let ((pair (generate-key
               (string->canonical-sexp
                "(genkey (ecdsa (curve Ed25519) (flags rfc6979)))"))))
    (list (base64-encode (sexp->text (find-sexp-token pair 'public-key)))
          (base64-encode (sexp->text (find-sexp-token pair 'private-key))))))

;; The SPKI signature sexp: signed data, signature value, signer's key.
(define (signature-of data secret public)
  (string->canonical-sexp
   (string-append "(signature "
                  (canonical-sexp->string data) " "
                  (canonical-sexp->string (sign data secret)) " "
                  (canonical-sexp->string public) ")")))

(define (sign-body public secret host body)
  (let* ((data (bytevector->hash-data (sha256 body)
                                      #:key-type (key-type public)))
         (sig  (signature-of data secret public)))
    (string-append "1;" host ";" (base64-encode (sexp->text sig)))))

(define (field->signature field)
  (match (string-split field #\;)
    (("1" host payload)
     (string->canonical-sexp (utf8->string (base64-decode payload))))))

;; The keys an ACL authorizes, as Scheme data; a bare key is a one-key ACL.
(define (authorized-keys acl)
  (match (canonical-sexp->sexp acl)
    (('acl ('entry keys ('tag ('guix 'import))) ...) keys)
    ((and key ('public-key _ ...)) (list key))))

(define (status sig hash acl)
  (let ((subject (find-sexp-token sig 'public-key))
        (data    (find-sexp-token sig 'data)))
    (cond ((not (and subject data)) 'corrupt-signature)
          ((not (member (canonical-sexp->sexp subject) (authorized-keys acl)))
           'unauthorized-key)
          ((not (equal? (hash-data->bytevector data) hash)) 'hash-mismatch)
          ((let ((value (find-sexp-token sig 'sig-val)))
             (and value (verify value data subject)))
           'valid-signature)
          (else 'invalid-signature))))

(define (verify-field acl body field)
  (let ((sig (false-if-exception (field->signature field))))
    (if sig
        (status sig (sha256 body) acl)
        'corrupt-signature)))

(define (reply . words)
  (display (string-join words " "))
  (newline)
  (force-output))

(define (handle line)
  (match (string-split line #\space)
    (("genkey")
     (apply reply "ok" (generate)))
    (("sign" pub sec host body)
     (reply "ok" (sign-body (text->sexp (base64-decode pub))
                            (text->sexp (base64-decode sec))
                            host (base64-decode body))))
    (("verify" acl body field)
     (reply "ok" (symbol->string
                  (verify-field (text->sexp (base64-decode acl))
                                (base64-decode body) field))))
    (("reprint" file)
     (reply "ok" (base64-encode (sexp->text (text->sexp (base64-decode file))))))))

(let loop ()
  (let ((line (read-line)))
    (unless (eof-object? line)
      (catch #t
        (lambda () (handle line))
        (lambda (key . args)
          (reply "error" (object->string (cons key args)))))
      (loop))))
