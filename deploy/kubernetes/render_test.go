package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/messaging-server/messaging-server/internal/config"
)

// The kustomizations under test, relative to this folder.
const (
	baseDir = "base"
	kedaDir = "overlays/keda"
)

// rendered is one kustomization's output, every object decoded strictly
// into its Go type.
type rendered struct {
	deployments  map[string]*appsv1.Deployment
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	pdbs         map[string]*policyv1.PodDisruptionBudget
	hpas         map[string]*autoscalingv2.HorizontalPodAutoscaler
	scaledObject map[string]*ScaledObject
}

// render runs kustomize on dir of fsys, as `kubectl apply -k` would, and
// decodes every object it yields. An object of a kind not listed here, or
// with a field its type does not have, fails the test.
func render(t *testing.T, fsys filesys.FileSystem, dir string) *rendered {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	r := &rendered{
		deployments:  map[string]*appsv1.Deployment{},
		services:     map[string]*corev1.Service{},
		configMaps:   map[string]*corev1.ConfigMap{},
		secrets:      map[string]*corev1.Secret{},
		pdbs:         map[string]*policyv1.PodDisruptionBudget{},
		hpas:         map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		scaledObject: map[string]*ScaledObject{},
	}
	for _, res := range rm.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", res.CurId(), err)
		}
		gvk := res.GetApiVersion() + "/" + res.GetKind()
		name := res.GetName()
		switch gvk {
		case "apps/v1/Deployment":
			r.deployments[name] = decode[appsv1.Deployment](t, gvk, y)
		case "v1/Service":
			r.services[name] = decode[corev1.Service](t, gvk, y)
		case "v1/ConfigMap":
			r.configMaps[name] = decode[corev1.ConfigMap](t, gvk, y)
		case "v1/Secret":
			r.secrets[name] = decode[corev1.Secret](t, gvk, y)
		case "policy/v1/PodDisruptionBudget":
			r.pdbs[name] = decode[policyv1.PodDisruptionBudget](t, gvk, y)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			r.hpas[name] = decode[autoscalingv2.HorizontalPodAutoscaler](t, gvk, y)
		case "keda.sh/v1alpha1/ScaledObject":
			r.scaledObject[name] = decode[ScaledObject](t, gvk, y)
		default:
			t.Fatalf("%s: unexpected kind %s (add it to render with its Go type)", dir, gvk)
		}
	}
	return r
}

// decode converts y to JSON and decodes it into a new T, failing on any
// field T does not know (a typo such as `readinesProbe` or a field at the
// wrong level) and on trailing data.
func decode[T any](t *testing.T, what string, y []byte) *T {
	t.Helper()
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("%s: yaml to json: %v", what, err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	v := new(T)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: strict decode into %T: %v\n%s", what, v, err, y)
	}
	if dec.More() {
		t.Fatalf("%s: trailing data after the object", what)
	}
	return v
}

func renderDisk(t *testing.T, dir string) *rendered {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return render(t, filesys.MakeFsOnDisk(), abs)
}

// ScaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject that this
// repository uses, with KEDA's field names (apis/keda/v1alpha1 in
// kedacore/keda). KEDA's own Go module is far heavier than these tests;
// decoding strictly into this copy still catches misspelt or misplaced
// fields. A field added to the overlay must be added here, as KEDA names it.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec mirrors KEDA's ScaledObjectSpec.
type ScaledObjectSpec struct {
	ScaleTargetRef   ScaleTarget     `json:"scaleTargetRef"`
	PollingInterval  *int32          `json:"pollingInterval,omitempty"`
	CooldownPeriod   *int32          `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount *int32          `json:"idleReplicaCount,omitempty"`
	MinReplicaCount  *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount  *int32          `json:"maxReplicaCount,omitempty"`
	Advanced         *KEDAAdvanced   `json:"advanced,omitempty"`
	Triggers         []ScaleTriggers `json:"triggers"`
}

// ScaleTarget mirrors KEDA's ScaleTarget.
type ScaleTarget struct {
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	Name                   string `json:"name"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// KEDAAdvanced mirrors KEDA's AdvancedConfig.
type KEDAAdvanced struct {
	HorizontalPodAutoscalerConfig *HPAConfig `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool       `json:"restoreToOriginalReplicaCount,omitempty"`
}

// HPAConfig mirrors KEDA's HorizontalPodAutoscalerConfig, whose behavior is
// the autoscaling/v2 type itself.
type HPAConfig struct {
	Name     string                                         `json:"name,omitempty"`
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// ScaleTriggers mirrors KEDA's ScaleTriggers.
type ScaleTriggers struct {
	Type              string                         `json:"type"`
	Name              string                         `json:"name,omitempty"`
	UseCachedMetrics  bool                           `json:"useCachedMetrics,omitempty"`
	Metadata          map[string]string              `json:"metadata"`
	AuthenticationRef *AuthenticationRef             `json:"authenticationRef,omitempty"`
	MetricType        autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// AuthenticationRef mirrors KEDA's AuthenticationRef.
type AuthenticationRef struct {
	Name string `json:"name"`
	Kind string `json:"kind,omitempty"`
}

// TestStrictDecodeCatchesUnknownFields proves the decoder the other tests
// rely on refuses a field its type does not have.
func TestStrictDecodeCatchesUnknownFields(t *testing.T) {
	good := []byte("apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n    - port: 80\n")
	if s := decode[corev1.Service](t, "good", good); s.Spec.Ports[0].Port != 80 {
		t.Fatalf("decoded %+v", s)
	}
	for name, y := range map[string]string{
		"unknown field":     "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  portz: []\n",
		"misplaced field":   "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  ports: []\n",
		"scaledobject typo": "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: x\nspec:\n  scaleTargetRef:\n    name: w\n  maxReplicas: 3\n  triggers: []\n",
	} {
		j, err := yaml.YAMLToJSON([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		var target any = new(corev1.Service)
		if strings.Contains(y, "ScaledObject") {
			target = new(ScaledObject)
		}
		if err := dec.Decode(target); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// TestBase renders the base and checks every rule the manifests state.
func TestBase(t *testing.T) {
	r := renderDisk(t, baseDir)
	want := map[string]int{"Deployment": 3, "Service": 1, "ConfigMap": 1, "Secret": 1, "PodDisruptionBudget": 2, "HorizontalPodAutoscaler": 1, "ScaledObject": 0}
	got := map[string]int{"Deployment": len(r.deployments), "Service": len(r.services), "ConfigMap": len(r.configMaps),
		"Secret": len(r.secrets), "PodDisruptionBudget": len(r.pdbs), "HorizontalPodAutoscaler": len(r.hpas), "ScaledObject": len(r.scaledObject)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("objects by kind = %v, want %v", got, want)
	}
	checkWorkloads(t, r)
	hpa := r.hpas["messaging-worker"]
	if hpa == nil {
		t.Fatalf("no HorizontalPodAutoscaler messaging-worker; have %v", keys(r.hpas))
	}
	checkHPA(t, r, hpa)
	// The base's Secret lists every secret variable, empty where
	// optional, so that an operator sees where each one goes.
	for _, sec := range r.secrets {
		for _, k := range []string{"WEBHOOK_URL", "WEBHOOK_AUTH_KEY", "WEBHOOK_SECRET", "API_KEY", "REDIS_PASSWORD", "POSTGRES_URI"} {
			if _, ok := sec.Data[k]; !ok {
				t.Errorf("Secret %s: %s missing", sec.Name, k)
			}
		}
	}
}

// TestKEDAOverlay renders the overlay: the base's rules still hold, the
// base's autoscaler is gone and the ScaledObject scales the worker on the
// api's pending-messages series.
func TestKEDAOverlay(t *testing.T) {
	r := renderDisk(t, kedaDir)
	checkWorkloads(t, r)
	if len(r.hpas) != 0 {
		t.Errorf("overlay keeps HorizontalPodAutoscalers %v; KEDA creates its own", keys(r.hpas))
	}
	if len(r.scaledObject) != 1 {
		t.Fatalf("ScaledObjects = %v, want one", keys(r.scaledObject))
	}
	for _, so := range r.scaledObject {
		checkScaledObject(t, r, so, "messaging-worker")
	}
}

// memTree copies the base and the overlay into an in-memory file system
// at /k/deploy/kubernetes, so that tests can add kustomizations beside them.
func memTree(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	for _, dir := range []string{baseDir, kedaDir} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return mem.WriteFile(filepath.Join("/k/deploy/kubernetes", p), b)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return mem
}

// TestKEDAOverlayRenames proves that an overlay which renames everything
// (namePrefix) renames the ScaledObject's target with the Deployment.
func TestKEDAOverlayRenames(t *testing.T) {
	mem := memTree(t)
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: team-\nresources:\n  - ../deploy/kubernetes/overlays/keda\n"
	if err := mem.WriteFile("/k/team/kustomization.yaml", []byte(k)); err != nil {
		t.Fatal(err)
	}
	r := render(t, mem, "/k/team")
	if r.deployments["team-messaging-worker"] == nil {
		t.Fatalf("deployments = %v, want team-messaging-worker", keys(r.deployments))
	}
	checkWorkloads(t, r)
	for _, so := range r.scaledObject {
		checkScaledObject(t, r, so, "team-messaging-worker")
	}
}

// readmeOverlay is the operator's overlay docs/operations.md shows under
// "## Kubernetes": its first yaml block.
func readmeOverlay(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Kubernetes\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Kubernetes" section`)
	}
	_, block, ok := strings.Cut(sec, "```yaml\n")
	if !ok {
		t.Fatal("docs/operations.md's Kubernetes section has no yaml block")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("docs/operations.md's yaml block does not end")
	}
	return block
}

// TestREADMEOverlay renders the overlay the documentation tells operators to write,
// over the base and over the KEDA overlay, with a secret.env of its own: the
// image, the namespace, the merged setting and the replaced secrets must
// all arrive, and every rule must still hold.
func TestREADMEOverlay(t *testing.T) {
	const from = "../deploy/kubernetes/base"
	overlay := readmeOverlay(t)
	if !strings.Contains(overlay, from) {
		t.Fatalf("README overlay does not build on %s:\n%s", from, overlay)
	}
	secretEnv := "WEBHOOK_URL=https://hooks.test/abc\nAPI_KEY=k3y\nPOSTGRES_URI=postgres://u:p@db.test:5432/m?sslmode=require\n"
	for _, res := range []string{from, "../deploy/kubernetes/overlays/keda"} {
		t.Run(filepath.Base(res), func(t *testing.T) {
			mem := memTree(t)
			k := strings.Replace(overlay, from, res, 1)
			if err := mem.WriteFile("/k/my-deployment/kustomization.yaml", []byte(k)); err != nil {
				t.Fatal(err)
			}
			if err := mem.WriteFile("/k/my-deployment/secret.env", []byte(secretEnv)); err != nil {
				t.Fatal(err)
			}
			r := render(t, mem, "/k/my-deployment")
			checkWorkloads(t, r)
			for name, d := range r.deployments {
				if d.Namespace != "messaging" {
					t.Errorf("%s: namespace %q, want messaging", name, d.Namespace)
				}
				if img := d.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/messaging-server:1.0.0" {
					t.Errorf("%s: image %q", name, img)
				}
			}
			for _, cm := range r.configMaps {
				if cm.Data["REDIS_HOST"] != "redis.messaging.svc" || cm.Data["CRON_INTERVAL"] != "120" {
					t.Errorf("ConfigMap: REDIS_HOST %q CRON_INTERVAL %q: the merge lost or kept the wrong values",
						cm.Data["REDIS_HOST"], cm.Data["CRON_INTERVAL"])
				}
			}
			for _, sec := range r.secrets {
				// replace: only the operator's secrets, no placeholder left.
				want := []string{"API_KEY", "POSTGRES_URI", "WEBHOOK_URL"}
				if string(sec.Data["API_KEY"]) != "k3y" || !slices.Equal(keys(sec.Data), want) {
					t.Errorf("Secret keys %v, want the operator's %v", keys(sec.Data), want)
				}
			}
			if strings.Contains(res, "keda") {
				for _, so := range r.scaledObject {
					checkScaledObject(t, r, so, "messaging-worker")
				}
			}
		})
	}
}

// component names the program a Deployment runs, from its label.
func component(d *appsv1.Deployment) string {
	return d.Spec.Template.Labels["app.kubernetes.io/component"]
}

// checkWorkloads checks what the base and every overlay must keep: the
// environment, one pinned image, the security context, resources, probes,
// the grace period and the Service and PodDisruptionBudgets.
func checkWorkloads(t *testing.T, r *rendered) {
	t.Helper()
	env := checkEnvironment(t, r)
	grace := atoi(t, "SERVER_GRACE_PERIOD", env["SERVER_GRACE_PERIOD"])
	httpPort := atoi(t, "HTTP_PORT", env["HTTP_PORT"])
	metricsPort := atoi(t, "METRICS_PORT", env["METRICS_PORT"])

	byComponent := map[string]*appsv1.Deployment{}
	images := map[string]bool{}
	for name, d := range r.deployments {
		c := component(d)
		if byComponent[c] != nil {
			t.Errorf("two Deployments run %q", c)
		}
		byComponent[c] = d
		checkSelector(t, "Deployment "+name, d.Spec.Selector, d.Spec.Template.Labels)
		checkPodSecurity(t, name, &d.Spec.Template.Spec)
		checkGrace(t, name, &d.Spec.Template.Spec, grace)
		if len(d.Spec.Template.Spec.Containers) != 1 || len(d.Spec.Template.Spec.InitContainers) != 0 {
			t.Errorf("%s: want exactly one container", name)
			continue
		}
		ctr := &d.Spec.Template.Spec.Containers[0]
		images[ctr.Image] = true
		checkImage(t, name, ctr.Image)
		checkContainerSecurity(t, name, ctr)
		checkResources(t, name, ctr)
		checkEnvFrom(t, r, name, ctr)
		checkCommand(t, name, c, ctr)
	}
	for _, c := range []string{"api", "scheduler", "worker"} {
		if byComponent[c] == nil {
			t.Fatalf("no Deployment with app.kubernetes.io/component=%s; have %v", c, keys(r.deployments))
		}
	}
	if len(images) != 1 {
		t.Errorf("images = %v, want the one image the Dockerfile builds", keys(images))
	}

	// api: startup and liveness on /healthz, readiness on /readyz, at
	// HTTP_PORT; reached through the Service.
	api := byComponent["api"]
	ctr := &api.Spec.Template.Spec.Containers[0]
	checkProbe(t, "api startupProbe", ctr, ctr.StartupProbe, "/healthz", httpPort)
	checkProbe(t, "api livenessProbe", ctr, ctr.LivenessProbe, "/healthz", httpPort)
	checkProbe(t, "api readinessProbe", ctr, ctr.ReadinessProbe, "/readyz", httpPort)
	checkService(t, r, api, httpPort)

	// worker: it serves only /metrics, on METRICS_PORT, which must be on.
	worker := byComponent["worker"]
	if metricsPort == 0 {
		t.Errorf("METRICS_PORT=0 turns off the endpoint the worker's probes use")
	}
	ctr = &worker.Spec.Template.Spec.Containers[0]
	checkProbe(t, "worker startupProbe", ctr, ctr.StartupProbe, "/metrics", metricsPort)
	checkProbe(t, "worker livenessProbe", ctr, ctr.LivenessProbe, "/metrics", metricsPort)
	if worker.Spec.Replicas != nil {
		t.Errorf("worker: replicas is set (%d); the autoscaler owns it and kubectl apply would reset it", *worker.Spec.Replicas)
	}
	checkPDB(t, r, worker)

	// scheduler: it serves no HTTP at all, so an HTTP probe could only fail.
	ctr = &byComponent["scheduler"].Spec.Template.Spec.Containers[0]
	for _, p := range []*corev1.Probe{ctr.StartupProbe, ctr.LivenessProbe, ctr.ReadinessProbe} {
		if p != nil && (p.HTTPGet != nil || p.TCPSocket != nil || p.GRPC != nil) {
			t.Errorf("scheduler: a network probe, but the scheduler listens on no port")
		}
	}
	if len(ctr.Ports) != 0 {
		t.Errorf("scheduler: containerPorts %v, but it listens on none", ctr.Ports)
	}
}

// configVars reads internal/config's variables: name -> tagged secret.
func configVars() map[string]bool {
	vars := map[string]bool{}
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if name := f.Tag.Get("env"); name != "" {
			vars[name] = f.Tag.Get("secret") == "true"
		}
	}
	return vars
}

// checkEnvironment checks the ConfigMap and the Secret against
// internal/config and returns the environment they give every program.
func checkEnvironment(t *testing.T, r *rendered) map[string]string {
	t.Helper()
	if len(r.configMaps) != 1 || len(r.secrets) != 1 {
		t.Fatalf("ConfigMaps %v, Secrets %v: want one of each", keys(r.configMaps), keys(r.secrets))
	}
	known := configVars()
	env := map[string]string{}
	for _, cm := range r.configMaps {
		if len(cm.BinaryData) != 0 {
			t.Errorf("ConfigMap %s: binaryData is not environment", cm.Name)
		}
		for k, v := range cm.Data {
			secret, ok := known[k]
			switch {
			case !ok:
				t.Errorf("ConfigMap %s: %s is not a variable internal/config reads", cm.Name, k)
			case secret:
				t.Errorf("ConfigMap %s: %s is tagged secret in internal/config; it belongs in the Secret", cm.Name, k)
			}
			env[k] = v
		}
	}
	for _, s := range r.secrets {
		if len(s.StringData) != 0 {
			t.Errorf("Secret %s: stringData; the generator writes data", s.Name)
		}
		for k, v := range s.Data {
			if _, ok := known[k]; !ok {
				t.Errorf("Secret %s: %s is not a variable internal/config reads", s.Name, k)
			}
			if _, dup := env[k]; dup {
				t.Errorf("%s is in both the ConfigMap and the Secret", k)
			}
			env[k] = string(v)
		}
	}
	// The whole environment must be one the programs start with.
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	if _, err := config.Load(environ); err != nil {
		t.Errorf("internal/config rejects the rendered environment: %v", err)
	}
	return env
}

// checkEnvFrom checks that a container takes its whole environment from the
// rendered ConfigMap and Secret (kustomize rewrites the generated names) and
// sets nothing beside them that internal/config does not know.
func checkEnvFrom(t *testing.T, r *rendered, name string, c *corev1.Container) {
	t.Helper()
	var cm, sec bool
	for _, e := range c.EnvFrom {
		switch {
		case e.ConfigMapRef != nil:
			cm = r.configMaps[e.ConfigMapRef.Name] != nil
		case e.SecretRef != nil:
			sec = r.secrets[e.SecretRef.Name] != nil
		}
		if e.Prefix != "" {
			t.Errorf("%s: envFrom prefix %q renames the variables", name, e.Prefix)
		}
	}
	if !cm || !sec {
		t.Errorf("%s: envFrom must name the rendered ConfigMap and Secret (configMap %v, secret %v)", name, cm, sec)
	}
	known := configVars()
	for _, e := range c.Env {
		if _, ok := known[e.Name]; !ok {
			t.Errorf("%s: env %s is not a variable internal/config reads", name, e.Name)
		}
	}
}

// checkImage refuses an image without a tag or digest, and `latest`.
func checkImage(t *testing.T, name, image string) {
	t.Helper()
	if strings.Contains(image, "@sha256:") {
		return
	}
	last := image[strings.LastIndex(image, "/")+1:]
	repo, tag, ok := strings.Cut(last, ":")
	if !ok || tag == "" || repo == "" {
		t.Errorf("%s: image %q has no tag: pin one", name, image)
		return
	}
	if tag == "latest" {
		t.Errorf("%s: image %q uses latest: pin a tag", name, image)
	}
}

// checkCommand checks that a Deployment starts the program its component
// names, one the Dockerfile builds into /app/.
func checkCommand(t *testing.T, name, component string, c *corev1.Container) {
	t.Helper()
	want := []string{"/app/" + component}
	if !reflect.DeepEqual(c.Command, want) || len(c.Args) != 0 {
		t.Errorf("%s: command %q args %q, want %q", name, c.Command, c.Args, want)
	}
	df := dockerfile(t)
	if !strings.Contains(df, "./cmd/"+component) || !strings.Contains(df, "COPY --from=build /out/ /app/") {
		t.Errorf("%s: the Dockerfile does not build ./cmd/%s into /app/", name, component)
	}
}

func dockerfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkPodSecurity: non-root as the Dockerfile's numeric USER, the runtime's
// seccomp profile, no service account token and no service links.
func checkPodSecurity(t *testing.T, name string, p *corev1.PodSpec) {
	t.Helper()
	sc := p.SecurityContext
	if sc == nil {
		t.Errorf("%s: no pod securityContext", name)
		return
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pod runAsNonRoot is not true", name)
	}
	user := dockerUser(t)
	if sc.RunAsUser == nil || fmt.Sprint(*sc.RunAsUser) != user {
		t.Errorf("%s: pod runAsUser %v, want the Dockerfile's USER %s", name, deref(sc.RunAsUser), user)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", name)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken is not false: the programs never call the Kubernetes API", name)
	}
	// A Service named redis would inject REDIS_PORT=tcp://... otherwise.
	if p.EnableServiceLinks == nil || *p.EnableServiceLinks {
		t.Errorf("%s: enableServiceLinks is not false", name)
	}
	if p.HostNetwork || p.HostPID || p.HostIPC {
		t.Errorf("%s: shares a host namespace", name)
	}
}

// dockerUser is the numeric user of the Dockerfile's USER line.
func dockerUser(t *testing.T) string {
	t.Helper()
	for line := range strings.SplitSeq(dockerfile(t), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "USER "); ok {
			user, _, _ := strings.Cut(strings.TrimSpace(rest), ":")
			return user
		}
	}
	t.Fatal("the Dockerfile has no USER line")
	return ""
}

func checkContainerSecurity(t *testing.T, name string, c *corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no container securityContext", name)
		return
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: container runAsNonRoot is not true", name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", name)
	}
	if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		t.Errorf("%s: container runAsUser 0", name)
	}
	if sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("%s: capabilities %+v, want drop [ALL] and add nothing", name, sc.Capabilities)
	}
}

// checkResources: CPU and memory requested and limited, requests within
// limits (the HPA and KEDA's cpu trigger measure against the CPU request).
func checkResources(t *testing.T, name string, c *corev1.Container) {
	t.Helper()
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[res]
		lim, okLim := c.Resources.Limits[res]
		if !okReq || !okLim || req.IsZero() || lim.IsZero() {
			t.Errorf("%s: %s request %v / limit %v: set both", name, res, req.String(), lim.String())
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s exceeds limit %s", name, res, req.String(), lim.String())
		}
	}
}

// shutdownMargin is how much longer than SERVER_GRACE_PERIOD Kubernetes must
// wait before SIGKILL (the same margin deploytest asks of compose):
// a worker cuts webhook calls at the grace period and then still records
// their outcomes in PostgreSQL.
const shutdownMargin = 10

// checkGrace: terminationGracePeriodSeconds covers a preStop pause, then
// SERVER_GRACE_PERIOD, then the margin.
func checkGrace(t *testing.T, name string, p *corev1.PodSpec, grace int) {
	t.Helper()
	if p.TerminationGracePeriodSeconds == nil {
		t.Errorf("%s: terminationGracePeriodSeconds not set (default 30 s)", name)
		return
	}
	pause := 0
	for _, c := range p.Containers {
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
			continue
		}
		ps := c.Lifecycle.PreStop
		if ps.Sleep == nil {
			t.Errorf("%s: preStop other than sleep: its length cannot be checked", name)
			continue
		}
		pause = max(pause, int(ps.Sleep.Seconds))
	}
	want := pause + grace + shutdownMargin
	if got := int(*p.TerminationGracePeriodSeconds); got < want || got <= grace {
		t.Errorf("%s: terminationGracePeriodSeconds %d, want at least %d (preStop %d s + SERVER_GRACE_PERIOD %d s + %d s)",
			name, got, want, pause, grace, shutdownMargin)
	}
}

// checkProbe: an HTTP GET on path at a port of the container that is port.
func checkProbe(t *testing.T, what string, c *corev1.Container, p *corev1.Probe, path string, port int) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: missing (want HTTP GET %s)", what, path)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s: path %q, want %q", what, p.HTTPGet.Path, path)
	}
	if got := containerPort(c, p.HTTPGet.Port.String()); got != port {
		t.Errorf("%s: port %s is %d, want %d from the ConfigMap", what, p.HTTPGet.Port.String(), got, port)
	}
	if p.TimeoutSeconds < 1 || p.PeriodSeconds < 1 || p.FailureThreshold < 1 {
		t.Errorf("%s: set timeoutSeconds, periodSeconds and failureThreshold", what)
	}
}

// containerPort resolves a port name or number of c; 0 if c has no such
// port.
func containerPort(c *corev1.Container, port string) int {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return int(p.ContainerPort)
		}
	}
	return 0
}

// checkService: the api's Service selects exactly the api pods and reaches
// HTTP_PORT.
func checkService(t *testing.T, r *rendered, api *appsv1.Deployment, httpPort int) {
	t.Helper()
	if len(r.services) != 1 {
		t.Fatalf("Services %v, want one for the api", keys(r.services))
	}
	for name, s := range r.services {
		if !subset(s.Spec.Selector, api.Spec.Template.Labels) {
			t.Errorf("Service %s: selector %v does not select the api pods %v", name, s.Spec.Selector, api.Spec.Template.Labels)
		}
		for other, d := range r.deployments {
			if d != api && subset(s.Spec.Selector, d.Spec.Template.Labels) {
				t.Errorf("Service %s also selects %s", name, other)
			}
		}
		for _, p := range s.Spec.Ports {
			if got := containerPort(&api.Spec.Template.Spec.Containers[0], p.TargetPort.String()); got != httpPort {
				t.Errorf("Service %s: targetPort %s is %d, want HTTP_PORT %d", name, p.TargetPort.String(), got, httpPort)
			}
		}
	}
}

// checkPDB: a PodDisruptionBudget covers the worker pods.
func checkPDB(t *testing.T, r *rendered, worker *appsv1.Deployment) {
	t.Helper()
	for _, p := range r.pdbs {
		if p.Spec.Selector != nil && subset(p.Spec.Selector.MatchLabels, worker.Spec.Template.Labels) {
			if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
				t.Errorf("PodDisruptionBudget %s: neither maxUnavailable nor minAvailable", p.Name)
			}
			return
		}
	}
	t.Errorf("no PodDisruptionBudget selects the worker pods")
}

// checkHPA: the autoscaler scales the worker Deployment on CPU.
func checkHPA(t *testing.T, r *rendered, hpa *autoscalingv2.HorizontalPodAutoscaler) {
	t.Helper()
	ref := hpa.Spec.ScaleTargetRef
	d := r.deployments[ref.Name]
	if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || d == nil || component(d) != "worker" {
		t.Errorf("HPA %s targets %s %s %s, want the worker Deployment", hpa.Name, ref.APIVersion, ref.Kind, ref.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 1 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
		t.Errorf("HPA %s: minReplicas %v maxReplicas %d", hpa.Name, deref(hpa.Spec.MinReplicas), hpa.Spec.MaxReplicas)
	}
	cpu := false
	for _, m := range hpa.Spec.Metrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
			m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil {
			cpu = true
		}
	}
	if !cpu {
		t.Errorf("HPA %s: no CPU utilization metric", hpa.Name)
	}
}

// pendingMetric is the series the api serves per status (internal/api's
// messagesDesc); checkScaledObject also proves the name is still there.
const pendingMetric = "messaging_messages"

func checkScaledObject(t *testing.T, r *rendered, so *ScaledObject, target string) {
	t.Helper()
	if so.APIVersion != "keda.sh/v1alpha1" || so.Kind != "ScaledObject" {
		t.Errorf("ScaledObject %s: %s %s", so.Name, so.APIVersion, so.Kind)
	}
	ref := so.Spec.ScaleTargetRef
	if ref.Name != target || (ref.Kind != "" && ref.Kind != "Deployment") || (ref.APIVersion != "" && ref.APIVersion != "apps/v1") {
		t.Errorf("ScaledObject %s targets %+v, want Deployment %s", so.Name, ref, target)
	}
	if d := r.deployments[ref.Name]; d == nil || component(d) != "worker" {
		t.Errorf("ScaledObject %s: target %s is not the rendered worker Deployment", so.Name, ref.Name)
	}
	if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1 {
		t.Errorf("ScaledObject %s: minReplicaCount %v, want at least 1 (0 stops sending)", so.Name, deref(so.Spec.MinReplicaCount))
	}
	if so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount < deref(so.Spec.MinReplicaCount) {
		t.Errorf("ScaledObject %s: maxReplicaCount %v", so.Name, deref(so.Spec.MaxReplicaCount))
	}

	src, err := os.ReadFile(filepath.Join("..", "..", "internal", "api", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `prometheus.NewDesc("`+pendingMetric+`"`) || !strings.Contains(string(src), `[]string{"status"}`) {
		t.Errorf("internal/api/metrics.go no longer serves %s{status}: update the ScaledObject's query", pendingMetric)
	}
	var prom, cpu bool
	for _, tr := range so.Spec.Triggers {
		switch tr.Type {
		case "prometheus":
			prom = true
			q := tr.Metadata["query"]
			if !strings.Contains(q, pendingMetric+`{status="pending"}`) {
				t.Errorf("prometheus trigger query %q does not read %s{status=\"pending\"}", q, pendingMetric)
			}
			if strings.Contains(q, "sum(") {
				t.Errorf("prometheus trigger query %q sums: every api replica reports the same count", q)
			}
			for _, k := range []string{"serverAddress", "threshold"} {
				if tr.Metadata[k] == "" {
					t.Errorf("prometheus trigger: %s not set", k)
				}
			}
		case "cpu":
			cpu = true
			if tr.MetricType != autoscalingv2.UtilizationMetricType || tr.Metadata["value"] == "" {
				t.Errorf("cpu trigger: metricType %q value %q", tr.MetricType, tr.Metadata["value"])
			}
		default:
			t.Errorf("unexpected trigger type %q", tr.Type)
		}
	}
	if !prom {
		t.Errorf("ScaledObject %s: no prometheus trigger on pending messages", so.Name)
	}
	if !cpu {
		t.Errorf("ScaledObject %s: no cpu trigger (the base's autoscaler it replaces scales on CPU)", so.Name)
	}
}

func checkSelector(t *testing.T, what string, sel *metav1.LabelSelector, labels map[string]string) {
	t.Helper()
	if sel == nil || len(sel.MatchExpressions) != 0 || len(sel.MatchLabels) == 0 || !subset(sel.MatchLabels, labels) {
		t.Errorf("%s: selector %v does not match its pod labels %v", what, sel, labels)
	}
}

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func atoi(t *testing.T, name, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func keys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
