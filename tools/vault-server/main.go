// Command vault is a thin wrapper that builds the upstream HashiCorp Vault
// server/CLI from Go modules (github.com/hashicorp/vault), so tests can run a
// real Vault without downloading release binaries. It is identical to
// upstream's main package.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
