package pki_test

import (
	"crypto/rand"
	"fmt"

	"github.com/tbfg/tbfg-node/substitutes/pki"
)

// A node signs the text of a narinfo up to its Signature line; a client with
// the node's key in its ACL checks it.
func Example() {
	key, err := pki.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	body := []byte("StorePath: /gnu/store/cs56i9digj9qg1bd383cmxc6xrfpdn9n-hello-2.12.2\n" +
		"NarHash: sha256:0qhasy0w9w9mfv0vacgzymxl4nww8cslyza5x2ci42v7i2b13lyl\n" +
		"NarSize: 282616\n" +
		"References: \n")
	field, err := pki.SignField(body, "node-1", key)
	if err != nil {
		panic(err)
	}
	acl := &pki.ACL{Keys: []pki.PublicKey{key.Public}}
	fmt.Println(pki.VerifyField(body, field, acl))
	fmt.Println(pki.VerifyField(body, field, &pki.ACL{}))
	// Output:
	// valid-signature
	// unauthorized-key
}
