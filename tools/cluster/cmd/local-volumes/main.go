// local-volumes provisions PersistentVolumes for the one-node cluster as folders on the node, the
// way kind's local-path provisioner does: a claim of a StorageClass whose provisioner is ours gets a
// hostPath volume pinned to the node, and the folder goes away with the volume when the claim is
// deleted (reclaim policy Delete). It runs beside the control plane with the admin kubeconfig.
//
// It polls instead of watching: a one-node test cluster has a handful of claims, and a poll loop has
// no watch to re-establish after the API server restarts.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	annStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	annSelectedNode       = "volume.kubernetes.io/selected-node"
	annProvisionedBy      = "pv.kubernetes.io/provisioned-by"
)

type provisioner struct {
	client kubernetes.Interface
	name   string
	root   string
	node   string
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of a user allowed to manage PersistentVolumes")
	name := flag.String("provisioner", "vault-platform.local/host-path", "provisioner name the StorageClass names")
	root := flag.String("root", "", "folder under which each volume gets its own folder")
	node := flag.String("node", "", "the node's name; every volume is pinned to it")
	interval := flag.Duration("interval", time.Second, "time between two passes")
	flag.Parse()
	if *kubeconfig == "" || *root == "" || *node == "" {
		log.Fatal("local-volumes: -kubeconfig, -root and -node are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalf("local-volumes: %v", err)
	}
	if err := os.MkdirAll(*root, 0o755); err != nil {
		log.Fatalf("local-volumes: %v", err)
	}
	p := &provisioner{client: kubernetes.NewForConfigOrDie(cfg), name: *name, root: *root, node: *node}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Printf("local-volumes: provisioning %s into %s on node %s", p.name, p.root, p.node)
	ticker := time.NewTicker(*interval)
	defer ticker.Stop()
	for {
		if err := p.pass(ctx); err != nil && ctx.Err() == nil {
			log.Printf("local-volumes: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (p *provisioner) pass(ctx context.Context) error {
	claims, err := p.client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range claims.Items {
		claim := &claims.Items[i]
		if claim.Spec.VolumeName != "" || claim.Annotations[annStorageProvisioner] != p.name ||
			claim.Status.Phase != corev1.ClaimPending || claim.DeletionTimestamp != nil {
			continue
		}
		if err := p.provision(ctx, claim); err != nil {
			log.Printf("local-volumes: claim %s/%s: %v", claim.Namespace, claim.Name, err)
		}
	}
	volumes, err := p.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range volumes.Items {
		pv := &volumes.Items[i]
		if pv.Annotations[annProvisionedBy] != p.name || pv.Status.Phase != corev1.VolumeReleased ||
			pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
			continue
		}
		if err := p.remove(ctx, pv); err != nil {
			log.Printf("local-volumes: volume %s: %v", pv.Name, err)
		}
	}
	return nil
}

func (p *provisioner) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.StorageClassName == nil {
		return nil
	}
	class, err := p.client.StorageV1().StorageClasses().Get(ctx, *claim.Spec.StorageClassName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	// WaitForFirstConsumer: the scheduler names the node once a pod uses the claim.
	if class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer &&
		claim.Annotations[annSelectedNode] == "" {
		return nil
	}
	if node := claim.Annotations[annSelectedNode]; node != "" && node != p.node {
		return fmt.Errorf("selected node %q is not this cluster's node %q", node, p.node)
	}
	size, ok := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		return fmt.Errorf("requests no storage size")
	}
	name := "pvc-" + string(claim.UID)
	dir := filepath.Join(p.root, fmt.Sprintf("%s_%s_%s", claim.Namespace, claim.Name, name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Pods run as their own users (Vault as 100:1000, PostgreSQL as its own) and fsGroup does not
	// apply to hostPath volumes: the folder must be writable by anyone, as local-path makes it.
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	hostPathType := corev1.HostPathDirectory
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: p.name}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			VolumeMode:                    claim.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hostPathType}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{p.node}}}}}}},
		},
	}
	_, err = p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err == nil {
		log.Printf("local-volumes: %s for %s/%s at %s", name, claim.Namespace, claim.Name, dir)
	}
	return err
}

func (p *provisioner) remove(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Spec.HostPath == nil {
		return nil
	}
	dir := filepath.Clean(pv.Spec.HostPath.Path)
	// Only ever a folder this provisioner made: never follow a volume somewhere else.
	if filepath.Dir(dir) != filepath.Clean(p.root) {
		return fmt.Errorf("path %s is not under %s; left alone", dir, p.root)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		log.Printf("local-volumes: deleted %s and %s", pv.Name, dir)
	}
	return err
}
