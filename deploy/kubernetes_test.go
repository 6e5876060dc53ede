package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/latticed/latticed/internal/config"
	"github.com/latticed/latticed/lattice"
	"github.com/latticed/latticed/trust"
)

// obj is one decoded Kubernetes object (or any YAML mapping).
type obj = map[string]any

// get walks a path of map keys; ok is false when any step is missing.
func get(o any, keys ...string) (any, bool) {
	for _, k := range keys {
		m, ok := o.(obj)
		if !ok {
			return nil, false
		}
		if o, ok = m[k]; !ok {
			return nil, false
		}
	}
	return o, true
}

func getStr(o any, keys ...string) string {
	v, _ := get(o, keys...)
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func getList(o any, keys ...string) []any {
	v, _ := get(o, keys...)
	l, _ := v.([]any)
	return l
}

func getMap(o any, keys ...string) obj {
	v, _ := get(o, keys...)
	m, _ := v.(obj)
	return m
}

// kustomizeBuild renders a kustomization with the pinned kustomize and
// decodes every object.
func kustomizeBuild(t *testing.T, dir string) []obj {
	t.Helper()
	kz := tool(t, "kustomize", "LATTICED_KUSTOMIZE_BIN")
	out, err := runTool(t, time.Minute, repoRoot, kz, "build", path(dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, out)
	}
	var objs []obj
	dec := yaml.NewDecoder(bytes.NewReader([]byte(out)))
	for {
		var o obj
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("kustomize build %s: output is not YAML: %v", dir, err)
		}
		if o == nil {
			continue
		}
		if getStr(o, "apiVersion") == "" || getStr(o, "kind") == "" || getStr(o, "metadata", "name") == "" {
			t.Fatalf("kustomize build %s: object without apiVersion, kind or metadata.name: %v", dir, o)
		}
		objs = append(objs, o)
	}
	return objs
}

func findObj(objs []obj, kind, name string) obj {
	for _, o := range objs {
		if getStr(o, "kind") == kind && (name == "" || getStr(o, "metadata", "name") == name) {
			return o
		}
	}
	return nil
}

func kinds(objs []obj) []string {
	var ks []string
	for _, o := range objs {
		ks = append(ks, getStr(o, "kind")+"/"+getStr(o, "metadata", "name"))
	}
	slices.Sort(ks)
	return ks
}

func TestKubernetesBase(t *testing.T) {
	objs := kustomizeBuild(t, "deploy/kubernetes/base")
	want := []string{"ConfigMap/latticed-config", "Deployment/app-with-latticed", "Service/latticed-metrics", "ServiceMonitor/latticed"}
	if got := kinds(objs); !slices.Equal(got, want) {
		t.Fatalf("base renders %v, want %v", got, want)
	}
	d := findObj(objs, "Deployment", "")
	if names := containerNames(d); !slices.Contains(names, "latticed") || len(names) < 2 {
		t.Errorf("sidecar Deployment has containers %v, want an app container and latticed", names)
	}
	checkLatticedWorkload(t, objs, d, true)
	checkMonitoring(t, objs, d)
}

func TestKubernetesLatticeOfOne(t *testing.T) {
	objs := kustomizeBuild(t, "deploy/kubernetes/overlays/lattice-of-one")
	d := findObj(objs, "Deployment", "")
	if d == nil {
		t.Fatalf("lattice-of-one renders no Deployment: %v", kinds(objs))
	}
	checkLatticedWorkload(t, objs, d, false)
	checkAppSeesOnlyCreds(t, d)
}

// checkAppSeesOnlyCreds: the app containers share no volume with latticed
// but the one latticed mounts at {data dir}/creds (the admin credentials),
// so the seeds in the data dir never reach them; NATS_CREDS is in it.
func checkAppSeesOnlyCreds(t *testing.T, w obj) {
	t.Helper()
	c := latticedContainer(t, w)
	dataDir := "/data"                // the image's LATTICED_DATA_DIR, which the ConfigMap keeps
	latticedAt := map[string]string{} // volume -> latticed's mount path
	for _, m := range getList(c, "volumeMounts") {
		latticedAt[getStr(m, "name")] = getStr(m, "mountPath")
	}
	for _, ac := range getList(w, "spec", "template", "spec", "containers") {
		if getStr(ac, "name") == "latticed" {
			continue
		}
		credsMount := ""
		for _, m := range getList(ac, "volumeMounts") {
			at, shared := latticedAt[getStr(m, "name")]
			if !shared {
				continue
			}
			if at != dataDir+"/creds" {
				t.Errorf("container %s mounts volume %s, which latticed mounts at %s: only %s/creds may be shared (the data dir holds the cluster, operator and system-account seeds)",
					getStr(ac, "name"), getStr(m, "name"), at, dataDir)
				continue
			}
			if getStr(m, "readOnly") != "true" {
				t.Errorf("container %s mounts latticed's creds read-write", getStr(ac, "name"))
			}
			credsMount = getStr(m, "mountPath")
		}
		for _, e := range getList(ac, "env") {
			if getStr(e, "name") == "NATS_CREDS" && (credsMount == "" || filepath.Dir(getStr(e, "value")) != credsMount) {
				t.Errorf("container %s: NATS_CREDS=%s is not in the creds volume it mounts (%q)", getStr(ac, "name"), getStr(e, "value"), credsMount)
			}
		}
	}
}

// The native sidecar form: latticed is an init container with restartPolicy
// Always (started, and ready by its startup probe, before the app; stopped
// after it), and nothing else of the base changes.
func TestKubernetesNativeSidecar(t *testing.T) {
	objs := kustomizeBuild(t, "deploy/kubernetes/overlays/native-sidecar")
	base := kustomizeBuild(t, "deploy/kubernetes/base")
	if got, want := kinds(objs), kinds(base); !slices.Equal(got, want) {
		t.Fatalf("native-sidecar renders %v, want the base's %v", got, want)
	}
	d := findObj(objs, "Deployment", "")
	if names := containerNames(d); slices.Contains(names, "latticed") || !slices.Contains(names, "app") {
		t.Errorf("containers %v: want the app, and latticed only among the init containers", names)
	}
	inits := getList(d, "spec", "template", "spec", "initContainers")
	if len(inits) == 0 || getStr(inits[0], "name") != "latticed" {
		t.Fatalf("init containers %v: want latticed first (it starts before the app and any other init container)", inits)
	}
	if rp := getStr(inits[0], "restartPolicy"); rp != "Always" {
		t.Errorf("latticed init container restartPolicy %q, want Always (a native sidecar; without it the pod never starts the app)", rp)
	}
	if p := getStr(inits[0], "startupProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("latticed startup probe %q, want /readyz: the app must start against a ready lattice", p)
	}
	// Apart from where it sits, latticed is the base's container.
	baseC, sideC := latticedContainer(t, findObj(base, "Deployment", "")), maps.Clone(inits[0].(obj))
	delete(sideC, "restartPolicy")
	delete(sideC, "startupProbe")
	baseC = maps.Clone(baseC)
	delete(baseC, "startupProbe")
	if !reflect.DeepEqual(baseC, sideC) {
		t.Errorf("the native sidecar's latticed container differs from the base's beyond restartPolicy and startupProbe:\nbase %v\nside %v", baseC, sideC)
	}
	checkLatticedWorkload(t, objs, d, true)
	checkMonitoring(t, objs, d)
}

func TestKubernetesDaemonSet(t *testing.T) {
	objs := kustomizeBuild(t, "deploy/kubernetes/overlays/daemonset")
	if findObj(objs, "Deployment", "") != nil {
		t.Errorf("daemonset variant still renders a Deployment: %v", kinds(objs))
	}
	ds := findObj(objs, "DaemonSet", "")
	if ds == nil {
		t.Fatalf("daemonset variant renders no DaemonSet: %v", kinds(objs))
	}
	checkLatticedWorkload(t, objs, ds, true)
	checkMonitoring(t, objs, ds)
}

func containerNames(w obj) []string {
	var names []string
	for _, c := range getList(w, "spec", "template", "spec", "containers") {
		names = append(names, getStr(c, "name"))
	}
	return names
}

// latticedContainer is the container named latticed: a regular container,
// or an init container (the native sidecar form).
func latticedContainer(t *testing.T, w obj) obj {
	t.Helper()
	spec := getMap(w, "spec", "template", "spec")
	for _, c := range append(getList(spec, "containers"), getList(spec, "initContainers")...) {
		if getStr(c, "name") == "latticed" {
			return c.(obj)
		}
	}
	t.Fatalf("%s %s has no container named latticed (containers: %v)", getStr(w, "kind"), getStr(w, "metadata", "name"), containerNames(w))
	return nil
}

// envVar is one variable of the latticed container: a literal value or a
// reference (secretKeyRef, fieldRef, ...).
type envVar struct {
	value string
	from  string // "" for a literal, else the valueFrom kind
}

// containerEnv merges the image's ENV, envFrom ConfigMaps and env, in the
// order Kubernetes applies them.
func containerEnv(t *testing.T, objs []obj, c obj) map[string]envVar {
	t.Helper()
	env := map[string]envVar{}
	for k, v := range imageEnv(t) {
		env[k] = envVar{value: v}
	}
	for _, ef := range getList(c, "envFrom") {
		name := getStr(ef, "configMapRef", "name")
		if name == "" {
			t.Errorf("envFrom %v: only configMapRef is expected", ef)
			continue
		}
		cm := findObj(objs, "ConfigMap", name)
		if cm == nil {
			t.Fatalf("envFrom ConfigMap %s is not in the rendered objects", name)
		}
		var names []string
		for k, v := range getMap(cm, "data") {
			names = append(names, k)
			env[k] = envVar{value: fmt.Sprint(v)}
		}
		checkSettingNames(t, "ConfigMap "+name, names)
	}
	var names []string
	for _, e := range getList(c, "env") {
		name := getStr(e, "name")
		names = append(names, name)
		if from := getMap(e, "valueFrom"); from != nil {
			for kind := range from {
				env[name] = envVar{from: kind}
			}
		} else {
			env[name] = envVar{value: getStr(e, "value")}
		}
	}
	checkSettingNames(t, "latticed container env", slices.DeleteFunc(names, func(n string) bool { return goRuntimeEnv[n] }))
	return env
}

// checkLatticedWorkload checks the latticed container of a Deployment or
// DaemonSet: probes, metrics port, security, resources, data dir,
// credentials, and that its settings pass latticed's own validation.
func checkLatticedWorkload(t *testing.T, objs []obj, w obj, externalNATS bool) {
	t.Helper()
	c := latticedContainer(t, w)
	pod := getMap(w, "spec", "template")
	env := containerEnv(t, objs, c)

	// Metrics address: reachable from the kubelet and Prometheus.
	addr := config.DefaultMetricsAddr
	if v, ok := env[config.EnvMetricsAddr]; ok {
		addr = v.value
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s=%q: %v", config.EnvMetricsAddr, addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		t.Errorf("%s=%s listens on loopback: kubelet probes and Prometheus connect to the pod IP", config.EnvMetricsAddr, addr)
	}
	port, _ := strconv.Atoi(portStr)

	ports := map[string]int{}
	for _, p := range getList(c, "ports") {
		n, _ := strconv.Atoi(getStr(p, "containerPort"))
		ports[getStr(p, "name")] = n
	}
	if ports["metrics"] != port {
		t.Errorf("container port named metrics is %d, want %d (the port of %s=%s)", ports["metrics"], port, config.EnvMetricsAddr, addr)
	}
	startupPath := "/healthz"
	if getStr(c, "restartPolicy") == "Always" {
		// A native sidecar's startup probe gates the app containers: it
		// waits for a ready lattice, not just a serving process.
		startupPath = "/readyz"
	}
	for probe, wantPath := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": startupPath} {
		p := getMap(c, probe)
		if p == nil {
			if probe != "startupProbe" {
				t.Errorf("latticed container has no %s", probe)
			}
			continue
		}
		if got := getStr(p, "httpGet", "path"); got != wantPath {
			t.Errorf("%s path %q, want %s", probe, got, wantPath)
		}
		pp := getStr(p, "httpGet", "port")
		n, err := strconv.Atoi(pp)
		if err != nil {
			n = ports[pp]
		}
		if n != port {
			t.Errorf("%s port %q is %d, want %d (the port of %s)", probe, pp, n, port, config.EnvMetricsAddr)
		}
	}
	ann := getMap(pod, "metadata", "annotations")
	if getStr(ann, "prometheus.io/scrape") != "true" || getStr(ann, "prometheus.io/port") != portStr || getStr(ann, "prometheus.io/path") != "/metrics" {
		t.Errorf("pod annotations %v, want prometheus.io/scrape \"true\", port %q, path /metrics", ann, portStr)
	}

	// Security context.
	sc := getMap(c, "securityContext")
	podSC := getMap(pod, "spec", "securityContext")
	if getStr(sc, "readOnlyRootFilesystem") != "true" {
		t.Error("latticed container: readOnlyRootFilesystem is not true")
	}
	if getStr(sc, "allowPrivilegeEscalation") != "false" {
		t.Error("latticed container: allowPrivilegeEscalation is not false")
	}
	if getStr(sc, "runAsNonRoot") != "true" && getStr(podSC, "runAsNonRoot") != "true" {
		t.Error("latticed container: runAsNonRoot is not true")
	}
	if drop := getList(sc, "capabilities", "drop"); !slices.Contains(drop, any("ALL")) {
		t.Errorf("latticed container drops capabilities %v, want ALL", drop)
	}
	for _, r := range []string{"requests/cpu", "requests/memory", "limits/memory"} {
		a, b, _ := strings.Cut(r, "/")
		if getStr(c, "resources", a, b) == "" {
			t.Errorf("latticed container has no resources.%s.%s", a, b)
		}
	}
	checkMemory(t, c, env)

	// Volumes: the data dir and the credentials.
	volumes := map[string]obj{}
	for _, v := range getList(pod, "spec", "volumes") {
		volumes[getStr(v, "name")] = v.(obj)
	}
	mounts := map[string]obj{} // mountPath -> volume
	readOnly := map[string]bool{}
	for _, m := range getList(c, "volumeMounts") {
		v := volumes[getStr(m, "name")]
		if v == nil {
			t.Errorf("volumeMount %v names no volume of the pod", m)
			continue
		}
		mounts[getStr(m, "mountPath")] = v
		readOnly[getStr(m, "mountPath")] = getStr(m, "readOnly") == "true"
	}
	dataDir := env[config.EnvDataDir].value
	if dv := mounts[dataDir]; dataDir == "" || dv == nil || (getMap(dv, "emptyDir") == nil && getMap(dv, "persistentVolumeClaim") == nil) {
		t.Errorf("%s=%q is not a mounted emptyDir or PVC (mounts %v): the root filesystem is read-only", config.EnvDataDir, dataDir, sortedKeys(mounts))
	}

	fakeFiles := t.TempDir()
	environ := []string{}
	for _, name := range sortedKeys(env) {
		v := env[name]
		switch {
		case strings.HasSuffix(name, "_CREDSFILE"):
			checkSecretFile(t, name, v.value, mounts, readOnly)
			p := filepath.Join(fakeFiles, name+".creds")
			if err := os.WriteFile(p, []byte("creds"), 0o600); err != nil {
				t.Fatal(err)
			}
			environ = append(environ, name+"="+p)
		case v.from == "secretKeyRef" && name == config.EnvClusterSeed:
			kp, err := trust.CreateKeyPair(lattice.KindCluster)
			if err != nil {
				t.Fatal(err)
			}
			environ = append(environ, name+"="+kp.Seed())
		case v.from != "":
			environ = append(environ, name+"=from-"+v.from)
		case name == config.EnvDataDir:
			environ = append(environ, name+"="+fakeFiles) // the check wants it to exist
		default:
			environ = append(environ, name+"="+v.value)
		}
	}
	fs := pflag.NewFlagSet("up", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	cfg, _, err := config.LoadEnviron(fs, environ)
	if err != nil {
		t.Fatalf("latticed would refuse this configuration: %v\nenvironment: %q", err, environ)
	}

	hosts := env[config.EnvRPCHost].value + env[config.EnvCtlHost].value
	if externalNATS {
		if cfg.EmbeddedNATS() || env[config.EnvRPCHost].value == "" || env[config.EnvCtlHost].value == "" {
			t.Errorf("want an external NATS: %s and %s set", config.EnvRPCHost, config.EnvCtlHost)
		}
		for _, n := range []string{config.EnvRPCCredsFile, config.EnvCtlCredsFile} {
			if env[n].value == "" {
				t.Errorf("%s is not set: each role needs its own NATS credentials", n)
			}
		}
		if env[config.EnvClusterSeed].from != "secretKeyRef" {
			t.Errorf("%s should come from a Secret (secretKeyRef), got %+v", config.EnvClusterSeed, env[config.EnvClusterSeed])
		}
		if cfg.CacheReplicas != 3 {
			t.Errorf("%s=%d, want 3 for the 3-server cluster of deploy/nats", config.EnvCacheReplicas, cfg.CacheReplicas)
		}
	} else {
		if !cfg.EmbeddedNATS() || hosts != "" {
			t.Errorf("lattice of one: NATS hosts %q are set, want none (embedded NATS)", hosts)
		}
		for name, v := range env {
			if strings.HasSuffix(name, "_CREDSFILE") || v.from == "secretKeyRef" {
				t.Errorf("lattice of one: %s should not be set (no external NATS, no Secrets)", name)
			}
		}
		for _, v := range volumes {
			if getMap(v, "secret") != nil {
				t.Errorf("lattice of one: the pod still mounts Secret volume %s", getStr(v, "name"))
			}
		}
	}
}

// checkSecretFile checks that a *_CREDSFILE path is a read-only file of a
// mounted Secret, readable by the non-root user.
func checkSecretFile(t *testing.T, name, file string, mounts map[string]obj, readOnly map[string]bool) {
	t.Helper()
	dir, base := filepath.Dir(file), filepath.Base(file)
	v := mounts[dir]
	secret := getMap(v, "secret")
	if secret == nil {
		t.Errorf("%s=%s: %s is not a mounted Secret", name, file, dir)
		return
	}
	if !readOnly[dir] {
		t.Errorf("%s: the Secret at %s should be mounted readOnly", name, dir)
	}
	if items := getList(secret, "items"); items != nil {
		found := false
		for _, it := range items {
			found = found || getStr(it, "path") == base
		}
		if !found {
			t.Errorf("%s=%s: Secret %s has no item with path %s", name, file, getStr(secret, "secretName"), base)
		}
	}
	if mode, err := strconv.Atoi(getStr(secret, "defaultMode")); err == nil && mode&0o044 == 0 {
		t.Errorf("Secret volume %s defaultMode %o: the non-root user (via fsGroup) cannot read it", getStr(secret, "secretName"), mode)
	}
}

// checkMonitoring: the Service selects the workload's pods on the metrics
// port, and the ServiceMonitor selects the Service.
func checkMonitoring(t *testing.T, objs []obj, w obj) {
	t.Helper()
	svc := findObj(objs, "Service", "latticed-metrics")
	sm := findObj(objs, "ServiceMonitor", "")
	if svc == nil || sm == nil {
		t.Fatalf("want Service latticed-metrics and a ServiceMonitor: %v", kinds(objs))
	}
	podLabels := getMap(w, "spec", "template", "metadata", "labels")
	for k, v := range getMap(svc, "spec", "selector") {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%v does not match the pods' labels %v", k, v, podLabels)
		}
	}
	svcPorts := map[string]bool{}
	for _, p := range getList(svc, "spec", "ports") {
		svcPorts[getStr(p, "name")] = true
		if tp := getStr(p, "targetPort"); tp != "metrics" {
			t.Errorf("Service port %s targets %q, want the container port named metrics", getStr(p, "name"), tp)
		}
	}
	for k, v := range getMap(sm, "spec", "selector", "matchLabels") {
		if getMap(svc, "metadata", "labels")[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v, which Service latticed-metrics does not carry", k, v)
		}
	}
	eps := getList(sm, "spec", "endpoints")
	if len(eps) == 0 {
		t.Fatal("ServiceMonitor has no endpoints")
	}
	for _, ep := range eps {
		if !svcPorts[getStr(ep, "port")] || getStr(ep, "path") != "/metrics" {
			t.Errorf("ServiceMonitor endpoint %v: want a port of the Service and path /metrics", ep)
		}
	}
}

// goRuntimeEnv are the Go runtime's variables a manifest may set for latticed.
var goRuntimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true}

// Memory of `latticed up` with the demo manifest, all processes summed
// (docs/operations.md, Memory): steady and peak (start-up, load), rounded up.
const (
	measuredSteadyMiB = 190
	measuredPeakMiB   = 350
	// otherProcsMiB is what the supervisor and providers take beside the host.
	otherProcsMiB = 100
)

// mebibytes parses a Kubernetes quantity (Mi, Gi) or a GOMEMLIMIT (MiB, GiB).
func mebibytes(s string) (int, bool) {
	for suf, mul := range map[string]int{"Mi": 1, "Gi": 1024, "MiB": 1, "GiB": 1024} {
		if n, ok := strings.CutSuffix(s, suf); ok {
			if v, err := strconv.Atoi(n); err == nil {
				return v * mul, true
			}
		}
	}
	return 0, false
}

// checkMemory: the request covers the measured steady use, the limit the
// measured peak, and GOMEMLIMIT (per process) leaves room under the limit
// for the other processes.
func checkMemory(t *testing.T, c obj, env map[string]envVar) {
	t.Helper()
	req, ok1 := mebibytes(getStr(c, "resources", "requests", "memory"))
	lim, ok2 := mebibytes(getStr(c, "resources", "limits", "memory"))
	if !ok1 || !ok2 {
		t.Errorf("latticed memory request %q / limit %q: want Mi or Gi quantities", getStr(c, "resources", "requests", "memory"), getStr(c, "resources", "limits", "memory"))
		return
	}
	if req < measuredSteadyMiB {
		t.Errorf("latticed memory request %dMi is below the measured steady use (~%d MiB)", req, measuredSteadyMiB)
	}
	if lim < measuredPeakMiB {
		t.Errorf("latticed memory limit %dMi is below the measured peak (~%d MiB)", lim, measuredPeakMiB)
	}
	gml, ok := mebibytes(env["GOMEMLIMIT"].value)
	if !ok {
		t.Errorf("GOMEMLIMIT=%q: want it set from the memory limit, in MiB or GiB", env["GOMEMLIMIT"].value)
		return
	}
	if gml > lim-otherProcsMiB || gml < req {
		t.Errorf("GOMEMLIMIT %dMiB: want between the request (%dMi) and the limit less the other processes (%dMi - %d)", gml, req, lim, otherProcsMiB)
	}
}
