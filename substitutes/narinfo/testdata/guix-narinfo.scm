;; Checks narinfo files the way a Guix client does before it trusts a
;; substitute (guix/narinfo.scm and guix/pki.scm), on libgcrypt through
;; guile-gcrypt. Used by scheme_test.go as an independent implementation.
;;
;; Usage: guile guix-narinfo.scm ACL NARINFO...
;; Prints one line per NARINFO: Guix's status word (valid-signature,
;; invalid-signature, hash-mismatch, unauthorized-key, corrupt-signature) or
;; unsigned.

(use-modules (gcrypt pk-crypto)
             (gcrypt hash)
             (gcrypt base64)
             (rnrs bytevectors)
             (rnrs io ports)
             (ice-9 match))

(define (read-text file)
  (utf8->string (call-with-input-file file get-bytevector-all #:binary #t)))

;; The value of the first "Signature: " line, as Guix's record reader finds it.
(define (signature-field text)
  (let loop ((lines (string-split text #\newline)))
    (match lines
      (() #f)
      ((line rest ...)
       (if (string-prefix? "Signature: " line)
           (substring line (string-length "Signature: "))
           (loop rest))))))

;; Guix signs the SHA-256 of everything before the first "Signature:".
(define (signed-hash text)
  (let ((index (string-contains text "Signature:")))
    (and index (sha256 (string->utf8 (string-take text index))))))

(define (field->sexp field)
  (match (string-split field #\;)
    (("1" host payload)
     (string->canonical-sexp (utf8->string (base64-decode payload))))))

;; The keys the ACL authorizes, as Scheme data; a bare key counts as an ACL
;; of one.
(define (acl-keys acl)
  (match (canonical-sexp->sexp acl)
    (('acl ('entry keys _ ...) ...) keys)
    ((and key ('public-key _ ...)) (list key))))

(define (status sig hash keys)
  (let ((subject (find-sexp-token sig 'public-key))
        (data    (find-sexp-token sig 'data))
        (value   (find-sexp-token sig 'sig-val)))
    (cond ((not (and subject data)) 'corrupt-signature)
          ((not (member (canonical-sexp->sexp subject) keys)) 'unauthorized-key)
          ((not (equal? (hash-data->bytevector data) hash)) 'hash-mismatch)
          ((and value (verify value data subject)) 'valid-signature)
          (else 'invalid-signature))))

(define (check keys file)
  (let* ((text  (read-text file))
         (field (signature-field text)))
    (if (not field)
        'unsigned
        (let ((sig (false-if-exception (field->sexp field))))
          (if sig
              (status sig (signed-hash text) keys)
              'corrupt-signature)))))

(match (command-line)
  ((_ acl files ...)
   (let ((keys (acl-keys (string->canonical-sexp (read-text acl)))))
     (for-each (lambda (file)
                 (display (check keys file))
                 (newline))
               files))))
