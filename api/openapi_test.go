package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// The OpenAPI description (openapi.json) must describe exactly the routes
// the kernel registers and exactly the JSON shapes of this package. These
// tests read the kernel's route registrations from its source, so a route
// added, removed or re-authenticated without updating the description
// fails here.

// oapiSpec is the part of an OpenAPI 3.0 document the tests check.
type oapiSpec struct {
	OpenAPI    string                              `json:"openapi"`
	Info       map[string]any                      `json:"info"`
	Security   []map[string][]string               `json:"security"`
	Paths      map[string]map[string]oapiOperation `json:"paths"`
	Components struct {
		SecuritySchemes map[string]any        `json:"securitySchemes"`
		Parameters      map[string]oapiParam  `json:"parameters"`
		Responses       map[string]any        `json:"responses"`
		Schemas         map[string]oapiSchema `json:"schemas"`
	} `json:"components"`
}

type oapiOperation struct {
	Summary     string                `json:"summary"`
	Security    *[]map[string]any     `json:"security"`
	Parameters  []oapiParam           `json:"parameters"`
	RequestBody *oapiBody             `json:"requestBody"`
	Responses   map[string]oapiAnswer `json:"responses"`
}

type oapiParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type oapiBody struct {
	Content map[string]struct {
		Schema oapiSchema `json:"schema"`
	} `json:"content"`
}

type oapiAnswer struct {
	Ref     string `json:"$ref"`
	Content map[string]struct {
		Schema oapiSchema `json:"schema"`
	} `json:"content"`
}

type oapiSchema struct {
	Ref                  string                `json:"$ref"`
	Type                 string                `json:"type"`
	Format               string                `json:"format"`
	Minimum              *float64              `json:"minimum"`
	Items                *oapiSchema           `json:"items"`
	AdditionalProperties *oapiSchema           `json:"additionalProperties"` // a map's values
	Properties           map[string]oapiSchema `json:"properties"`
}

// schemaTypes maps each component schema to the type it describes.
var schemaTypes = map[string]reflect.Type{
	"Checkpoint":                reflect.TypeFor[Checkpoint](),
	"AsOf":                      reflect.TypeFor[AsOf](),
	"HistoryEntry":              reflect.TypeFor[HistoryEntry](),
	"HistoryStatus":             reflect.TypeFor[HistoryStatus](),
	"CheckpointKeys":            reflect.TypeFor[CheckpointKeys](),
	"CheckpointKey":             reflect.TypeFor[CheckpointKey](),
	"InclusionProof":            reflect.TypeFor[InclusionProof](),
	"ConsistencyProof":          reflect.TypeFor[ConsistencyProof](),
	"Error":                     reflect.TypeFor[Error](),
	"Limits":                    reflect.TypeFor[Limits](),
	"EntityRate":                reflect.TypeFor[EntityRate](),
	"LimitsRequest":             reflect.TypeFor[LimitsRequest](),
	"LimitsResponse":            reflect.TypeFor[LimitsResponse](),
	"ErrorBody":                 reflect.TypeFor[ErrorBody](),
	"Head":                      reflect.TypeFor[Head](),
	"Peer":                      reflect.TypeFor[Peer](),
	"Status":                    reflect.TypeFor[Status](),
	"InitResponse":              reflect.TypeFor[InitResponse](),
	"Outcome":                   reflect.TypeFor[Outcome](),
	"KVPutRequest":              reflect.TypeFor[KVPutRequest](),
	"KVCASRequest":              reflect.TypeFor[KVCASRequest](),
	"KVResponse":                reflect.TypeFor[KVResponse](),
	"Event":                     reflect.TypeFor[Event](),
	"VerifyResponse":            reflect.TypeFor[VerifyResponse](),
	"SnapshotRestoreResponse":   reflect.TypeFor[SnapshotRestoreResponse](),
	"RemovePeerRequest":         reflect.TypeFor[RemovePeerRequest](),
	"TransferLeadershipRequest": reflect.TypeFor[TransferLeadershipRequest](),
	"RaftSnapshotResponse":      reflect.TypeFor[RaftSnapshotResponse](),
	"Health":                    reflect.TypeFor[Health](),
	"SyscallRequest":            reflect.TypeFor[SyscallRequest](),
	"SyscallResponse":           reflect.TypeFor[SyscallResponse](),
	"Effect":                    reflect.TypeFor[Effect](),
	"GrantRequest":              reflect.TypeFor[GrantRequest](),
	"GrantResponse":             reflect.TypeFor[GrantResponse](),
	"Capability":                reflect.TypeFor[Capability](),
	"OperatorRequest":           reflect.TypeFor[OperatorRequest](),
	"PolicyRequest":             reflect.TypeFor[PolicyRequest](),
	"Policy":                    reflect.TypeFor[Policy](),
	"PolicyResponse":            reflect.TypeFor[PolicyResponse](),
	"ProtocolStatus":            reflect.TypeFor[ProtocolStatus](),
	"AddPeerRequest":            reflect.TypeFor[AddPeerRequest](),
	"AddPeerResponse":           reflect.TypeFor[AddPeerResponse](),
	"ProtocolMember":            reflect.TypeFor[ProtocolMember](),
	"ProtocolChange":            reflect.TypeFor[ProtocolChange](),
	"ProtocolDomain":            reflect.TypeFor[ProtocolDomain](),
	"ProtocolUpgradeRequest":    reflect.TypeFor[ProtocolUpgradeRequest](),
	"ProtocolUpgradeResponse":   reflect.TypeFor[ProtocolUpgradeResponse](),
	"BacktestRequest":           reflect.TypeFor[BacktestRequest](),
	"BacktestTransition":        reflect.TypeFor[BacktestTransition](),
	"BacktestResponse":          reflect.TypeFor[BacktestResponse](),
	"Approval":                  reflect.TypeFor[Approval](),
	"HaltRequest":               reflect.TypeFor[HaltRequest](),
	"Halt":                      reflect.TypeFor[Halt](),
	"OperatorInitRequest":       reflect.TypeFor[OperatorInitRequest](),
	"OperatorInit":              reflect.TypeFor[OperatorInit](),
	"OperatorInitResponse":      reflect.TypeFor[OperatorInitResponse](),
	"OperatorToken":             reflect.TypeFor[OperatorToken](),
	"PassportRef":               reflect.TypeFor[PassportRef](),
	"DomainCreateRequest":       reflect.TypeFor[DomainCreateRequest](),
	"DomainCreateResponse":      reflect.TypeFor[DomainCreateResponse](),
	"Domain":                    reflect.TypeFor[Domain](),
	"Passport":                  reflect.TypeFor[Passport](),
	"AmendProposeRequest":       reflect.TypeFor[AmendProposeRequest](),
	"AmendSignRequest":          reflect.TypeFor[AmendSignRequest](),
	"Amendment":                 reflect.TypeFor[Amendment](),
	"AmendResponse":             reflect.TypeFor[AmendResponse](),
	"Canon":                     reflect.TypeFor[Canon](),
	"OperatorInfo":              reflect.TypeFor[OperatorInfo](),
	"RekeyRequest":              reflect.TypeFor[RekeyRequest](),
	"RekeySignature":            reflect.TypeFor[RekeySignature](),
	"FedHaltRequest":            reflect.TypeFor[FedHaltRequest](),
	"FedResumeRequest":          reflect.TypeFor[FedResumeRequest](),
	"FedHaltResponse":           reflect.TypeFor[FedHaltResponse](),
	"FedHaltState":              reflect.TypeFor[FedHaltState](),
	"FedKeys":                   reflect.TypeFor[FedKeys](),
	"KeyRotateRequest":          reflect.TypeFor[KeyRotateRequest](),
	"KeyRotateResponse":         reflect.TypeFor[KeyRotateResponse](),
	"WitnessHead":               reflect.TypeFor[WitnessHead](),
	"BusEvent":                  reflect.TypeFor[BusEvent](),
	"RemoteRes":                 reflect.TypeFor[RemoteRes](),
	"BusStats":                  reflect.TypeFor[BusStats](),
	"CortexSignal":              reflect.TypeFor[CortexSignal](),
	"CortexInsight":             reflect.TypeFor[CortexInsight](),
	"CortexKeyringRequest":      reflect.TypeFor[CortexKeyringRequest](),
	"CortexKeyring":             reflect.TypeFor[CortexKeyring](),
	"SignalRequest":             reflect.TypeFor[SignalRequest](),
	"SignalResponse":            reflect.TypeFor[SignalResponse](),
	"GatewaySyscallRequest":     reflect.TypeFor[GatewaySyscallRequest](),
	"EffectReportRequest":       reflect.TypeFor[EffectReportRequest](),
	"EffectReportResponse":      reflect.TypeFor[EffectReportResponse](),
	"Baseline":                  reflect.TypeFor[Baseline](),
	"MetricReport":              reflect.TypeFor[MetricReport](),
	"TrustReport":               reflect.TypeFor[TrustReport](),
	"TrustAdjustRequest":        reflect.TypeFor[TrustAdjustRequest](),
	"TrustAdjustResponse":       reflect.TypeFor[TrustAdjustResponse](),
	"Posture":                   reflect.TypeFor[Posture](),
	"PostureSnapshot":           reflect.TypeFor[PostureSnapshot](),
	"PostureMatch":              reflect.TypeFor[PostureMatch](),
	"EvolveStartRequest":        reflect.TypeFor[EvolveStartRequest](),
	"EvolveStartResponse":       reflect.TypeFor[EvolveStartResponse](),
	"EvolveBacktest":            reflect.TypeFor[EvolveBacktest](),
	"EvolveResponse":            reflect.TypeFor[EvolveResponse](),
	"Evolution":                 reflect.TypeFor[Evolution](),
	"EvolveShadow":              reflect.TypeFor[EvolveShadow](),
	"EvolveCounts":              reflect.TypeFor[EvolveCounts](),
	"EvolveVerdict":             reflect.TypeFor[EvolveVerdict](),
	"EvolveMetric":              reflect.TypeFor[EvolveMetric](),
	"PolicyVersion":             reflect.TypeFor[PolicyVersion](),
	"PolicyRollbackRequest":     reflect.TypeFor[PolicyRollbackRequest](),
	"PolicyRollbackResponse":    reflect.TypeFor[PolicyRollbackResponse](),
}

func loadSpec(t *testing.T) *oapiSpec {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	var s oapiSpec
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if s.OpenAPI != "3.0.3" || s.Info["title"] == nil || s.Info["version"] == nil {
		t.Fatalf("openapi.json: want openapi 3.0.3 with info.title and info.version, got %q %v", s.OpenAPI, s.Info)
	}
	return &s
}

// kernelRoute is one registration found in the kernel's source.
type kernelRoute struct {
	method, path string // path in OpenAPI form ({key...} becomes {key})
	open         bool   // registered without authentication
	file         string
}

var (
	routeRE   = regexp.MustCompile(`\b(authed|open)\("(GET|HEAD|POST|PUT|PATCH|DELETE) (/[^"]*)"`)
	serviceRE = regexp.MustCompile(`\bPattern: "(GET|HEAD|POST|PUT|PATCH|DELETE) (/[^"]*)", (Open|Handler):`)
)

// routeDirs hold the kernel and the services that plug into it.
var routeDirs = []string{"kernel", "sensing", "gatewayapi", "transparency", "history", "evolution", "sovereign", "domain", "cortex", "planner"}

// kernelRoutes reads every route registration from the non-test sources
// of the kernel and its services; http.go and gatehttp.go must each
// contribute.
func kernelRoutes(t *testing.T) []kernelRoute {
	t.Helper()
	var files []string
	for _, d := range routeDirs {
		fs, err := filepath.Glob(filepath.Join("..", filepath.FromSlash(d), "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	var out []kernelRoute
	perFile := map[string]int{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routeRE.FindAllStringSubmatch(string(b), -1) {
			path := strings.ReplaceAll(m[3], "...}", "}")
			out = append(out, kernelRoute{method: m[2], path: path, open: m[1] == "open", file: filepath.Base(f)})
			perFile[filepath.Base(f)]++
		}
		for _, m := range serviceRE.FindAllStringSubmatch(string(b), -1) {
			path := strings.ReplaceAll(m[2], "...}", "}")
			out = append(out, kernelRoute{method: m[1], path: path, open: m[3] == "Open", file: filepath.Base(f)})
			perFile[filepath.Base(f)]++
		}
	}
	for _, f := range []string{"http.go", "gatehttp.go"} {
		if perFile[f] == 0 {
			t.Fatalf("found no route registrations in kernel/%s: the pattern %s no longer matches", f, routeRE)
		}
	}
	return out
}

var pathParamRE = regexp.MustCompile(`\{([^}]+)\}`)

func TestOpenAPIDescribesEveryKernelRoute(t *testing.T) {
	s := loadSpec(t)
	routes := kernelRoutes(t)
	registered := map[string]bool{}
	for _, r := range routes {
		key := r.method + " " + r.path
		registered[key] = true
		op, ok := s.Paths[r.path][strings.ToLower(r.method)]
		if !ok {
			t.Errorf("kernel/%s registers %s but openapi.json has no such operation", r.file, key)
			continue
		}
		if op.Summary == "" {
			t.Errorf("%s: no summary", key)
		}
		if _, ok := op.Responses["200"]; !ok {
			t.Errorf("%s: no 200 response", key)
		}
		// Open routes say so; authenticated ones inherit the global
		// bearer requirement and document 401.
		if r.open != (op.Security != nil && len(*op.Security) == 0) {
			t.Errorf("%s: open=%v in the kernel, but its security is %v", key, r.open, op.Security)
		}
		if _, ok := op.Responses["401"]; !r.open && !ok {
			t.Errorf("%s: an authenticated route must document 401", key)
		}
		// Every path parameter is declared.
		declared := map[string]bool{}
		for _, p := range op.Parameters {
			if p.In == "path" {
				declared[p.Name] = true
			}
		}
		for _, m := range pathParamRE.FindAllStringSubmatch(r.path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %q is not declared", key, m[1])
			}
		}
	}
	// Nothing stale: every documented operation is registered.
	var stale []string
	for path, ops := range s.Paths {
		for method := range ops {
			if key := strings.ToUpper(method) + " " + path; !registered[key] {
				stale = append(stale, key)
			}
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("openapi.json documents operations the kernel does not register: %v", stale)
	}
	if len(s.Security) != 1 || s.Security[0]["bearerAuth"] == nil || s.Components.SecuritySchemes["bearerAuth"] == nil {
		t.Errorf("openapi.json must require bearerAuth globally and define it: %v", s.Security)
	}
	t.Logf("%d kernel routes checked", len(routes))
}

// jsonFields returns the JSON fields of struct type st as encoding/json
// sees them (embedded structs flattened).
func jsonFields(st reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

var timeType = reflect.TypeFor[time.Time]()

// checkSchema reports how schema fails to describe Go type gt.
func checkSchema(s *oapiSpec, where string, sc oapiSchema, gt reflect.Type) []string {
	bad := func(format string) []string { return []string{where + ": " + format} }
	switch {
	case gt.Kind() == reflect.Pointer:
		// An optional field: described as what it points to.
		return checkSchema(s, where, sc, gt.Elem())
	case gt == timeType:
		if sc.Type != "string" || sc.Format != "date-time" {
			return bad("a time must be a string with format date-time")
		}
		return nil
	case gt.Kind() == reflect.Struct:
		want := "#/components/schemas/" + gt.Name()
		if sc.Ref != want {
			return bad("want $ref " + want + ", got " + sc.Ref)
		}
		return nil
	}
	switch gt.Kind() {
	case reflect.String:
		if sc.Type != "string" {
			return bad("want type string, got " + sc.Type)
		}
	case reflect.Bool:
		if sc.Type != "boolean" {
			return bad("want type boolean, got " + sc.Type)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if sc.Type != "integer" {
			return bad("want type integer, got " + sc.Type)
		}
	case reflect.Float32, reflect.Float64:
		if sc.Type != "number" {
			return bad("want type number, got " + sc.Type)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if sc.Type != "integer" || sc.Minimum == nil || *sc.Minimum < 0 {
			return bad("an unsigned integer must be type integer with minimum >= 0")
		}
	case reflect.Slice:
		if sc.Type != "array" || sc.Items == nil {
			return bad("want type array with items, got " + sc.Type)
		}
		return checkSchema(s, where+"[]", *sc.Items, gt.Elem())
	case reflect.Map:
		if gt.Key().Kind() != reflect.String || sc.Type != "object" || sc.AdditionalProperties == nil {
			return bad("a map with string keys must be type object with additionalProperties, got " + sc.Type)
		}
		return checkSchema(s, where+"{}", *sc.AdditionalProperties, gt.Elem())
	default:
		return bad("no OpenAPI mapping for Go kind " + gt.Kind().String())
	}
	return nil
}

func TestOpenAPISchemasMatchTypes(t *testing.T) {
	s := loadSpec(t)
	for name := range s.Components.Schemas {
		if _, ok := schemaTypes[name]; !ok {
			t.Errorf("schema %s describes no type of package api (add it to schemaTypes)", name)
		}
	}
	for name, gt := range schemaTypes {
		sc, ok := s.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s", name)
			continue
		}
		fields := jsonFields(gt)
		for f, ft := range fields {
			prop, ok := sc.Properties[f]
			if !ok {
				t.Errorf("schema %s lacks property %q of api.%s", name, f, gt.Name())
				continue
			}
			for _, msg := range checkSchema(s, name+"."+f, prop, ft) {
				t.Error(msg)
			}
		}
		for p := range sc.Properties {
			if _, ok := fields[p]; !ok {
				t.Errorf("schema %s has property %q that api.%s does not", name, p, gt.Name())
			}
		}
	}
}

// TestOpenAPIReferencesResolve checks every $ref of the document points at
// a component that exists.
func TestOpenAPIReferencesResolve(t *testing.T) {
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	components, _ := doc["components"].(map[string]any)
	refs := 0
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if r, ok := v["$ref"].(string); ok {
				refs++
				parts := strings.Split(strings.TrimPrefix(r, "#/components/"), "/")
				group, _ := components[parts[0]].(map[string]any)
				if len(parts) != 2 || !strings.HasPrefix(r, "#/components/") || group[parts[1]] == nil {
					t.Errorf("$ref %q does not resolve", r)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	if refs == 0 {
		t.Fatal("no $ref found: the walk is broken")
	}
}
