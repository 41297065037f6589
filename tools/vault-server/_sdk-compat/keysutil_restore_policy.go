// Copied by build.sh into its patched copy of github.com/hashicorp/vault/sdk
// (helper/keysutil). Not part of the wrapper module: Go ignores directories
// whose name starts with "_".
//
// Vault v1.21.4's in-tree sdk (what upstream builds it with) has
// LockManager.RestorePolicy returning (restoredName string, err error), as the
// published sdk does from v0.25 on; the published v0.21.0 that Vault's go.mod
// names returns only error. build.sh renames v0.21.0's method to
// restorePolicyV021 and this adapter restores the release-branch signature
// (same behaviour as sdk v0.25.1: validate the backup, return the key name).

package keysutil

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/hashicorp/vault/sdk/helper/jsonutil"
	"github.com/hashicorp/vault/sdk/logical"
)

// RestorePolicy acquires an exclusive lock on the policy name and restores the
// given policy along with the archive. It returns the restored key's name.
func (lm *LockManager) RestorePolicy(ctx context.Context, storage logical.Storage, name, backup string, force bool) (string, error) {
	backupBytes, err := base64.StdEncoding.DecodeString(backup)
	if err != nil {
		return "", err
	}
	var keyData KeyData
	if err := jsonutil.DecodeJSON(backupBytes, &keyData); err != nil {
		return "", err
	}
	if keyData.Policy == nil {
		return "", errors.New("backup data does not contain a valid policy")
	}
	if name == "" {
		name = keyData.Policy.Name
	}
	if err := lm.restorePolicyV021(ctx, storage, name, backup, force); err != nil {
		return "", err
	}
	return name, nil
}
