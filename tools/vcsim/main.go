// Command vcsim runs govmomi's vCenter/ESXi simulator on loopback for the
// collection's tests, with a SOAP call log and run-time fault injection, and
// UpdateConfig on a VirtualApp, which the simulator lacks.
//
// Build (GOPATH mode, Debian's govmomi 0.24):
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o .build/vcsim ./tools/vcsim
//
// When ready it prints one JSON line describing the endpoint on stdout and
// serves until SIGTERM/SIGINT, then removes every datastore directory (all
// created under $TMPDIR).
package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	vimxml "github.com/vmware/govmomi/vim25/xml"
)

func main() {
	log.SetPrefix("vcsim: ")
	log.SetFlags(0)

	mode := flag.String("mode", "vpx", "inventory model: vpx (vCenter) or esx (standalone host)")
	listen := flag.String("listen", "127.0.0.1:0",
		"listen address: loopback, or a private address of this machine (a test bridge's)")
	user := flag.String("username", "user", "login user name")
	pass := flag.String("password", "pass", "login password")
	useTLS := flag.Bool("tls", true, "serve HTTPS with the simulator's self-signed certificate")
	callLog := flag.String("call-log", "", "append one JSON line per request to this file")
	extraDS := flag.String("extra-datastores", "", "comma separated names of extra datastores mounted on every host")
	extraVMs := flag.Int("extra-vms", 0, "number of extra powered-off VMs (bench-vm-NNNN)")
	dcs := flag.Int("datacenters", 1, "vpx: datacenters")
	clusters := flag.Int("clusters", 1, "vpx: clusters per datacenter")
	clusterHosts := flag.Int("cluster-hosts", 3, "vpx: hosts per cluster")
	standalone := flag.Int("standalone-hosts", 1, "vpx: standalone hosts per datacenter")
	portgroups := flag.Int("portgroups", 1, "vpx: DV port groups per datacenter")
	datastores := flag.Int("datastores", 1, "local datastores (LocalDS_N)")
	vms := flag.Int("vms", 2, "VMs per resource pool / host")
	pools := flag.Int("pools", 0, "vpx: child resource pools per cluster")
	flag.Parse()

	if err := checkLoopback(*listen); err != nil {
		log.Fatal(err)
	}

	var model *simulator.Model
	switch *mode {
	case "vpx":
		model = simulator.VPX()
		model.Datacenter = *dcs
		model.Cluster = *clusters
		model.ClusterHost = *clusterHosts
		model.Host = *standalone
		model.Portgroup = *portgroups
		model.Pool = *pools
	case "esx":
		model = simulator.ESX()
	default:
		log.Fatalf("unknown -mode %q (want vpx or esx)", *mode)
	}
	model.Datastore = *datastores
	model.Machine = *vms

	if err := model.Create(); err != nil {
		log.Fatalf("create model: %s", err)
	}

	ctx := context.Background()
	// The simulator's Service is itself a soap.RoundTripper: setting up the
	// extra inventory in process skips HTTP and XML entirely.
	c, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		log.Fatal(err)
	}

	var extraDirs []string
	cleanup := func() {
		model.Remove()
		for _, dir := range extraDirs {
			_ = os.RemoveAll(dir)
		}
	}
	fail := func(format string, args ...interface{}) {
		cleanup()
		log.Fatalf(format, args...)
	}

	for _, name := range strings.Split(*extraDS, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		dirs, err := addDatastore(ctx, c, name)
		extraDirs = append(extraDirs, dirs...)
		if err != nil {
			fail("datastore %s: %s", name, err)
		}
	}

	if err := addVMs(ctx, c, *extraVMs); err != nil {
		fail("extra VMs: %s", err)
	}

	h := &harness{faults: map[string]*fault{}, vim: c}
	if *callLog != "" {
		h.log, err = os.OpenFile(*callLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fail("call log: %s", err)
		}
	}

	// A fresh Userinfo, never DefaultLogin itself: the simulator accepts any
	// credentials when Listen.User is DefaultLogin.
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}
	server := model.Service.NewServer()
	// Nobody knows the port before the ready line below, so swapping the
	// handler of the already serving server cannot race with a request.
	h.next = server.Config.Handler
	server.Config.Handler = h

	info := map[string]interface{}{
		"url":        (&url.URL{Scheme: server.URL.Scheme, Host: server.URL.Host, Path: server.URL.Path}).String(),
		"host":       server.URL.Hostname(),
		"port":       server.Listener.Addr().(*net.TCPAddr).Port,
		"username":   *user,
		"password":   *pass,
		"mode":       *mode,
		"pid":        os.Getpid(),
		"datastores": datastoreDirs(),
		"thumbprint": "",
		"cert_pem":   "",
		"call_log":   *callLog,
	}
	if *useTLS {
		cert := server.Certificate()
		sum := sha1.Sum(cert.Raw)
		hex := make([]string, len(sum))
		for i, b := range sum {
			hex[i] = fmt.Sprintf("%02X", b)
		}
		info["thumbprint"] = strings.Join(hex, ":")
		info["cert_pem"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)

	line, _ := json.Marshal(info)
	if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
		fail("write ready line: %s", err)
	}

	<-sig
	// Close waits for outstanding requests; a long-polling WaitForUpdates
	// must not keep the datastore directories alive.
	closed := make(chan struct{})
	go func() {
		server.CloseClientConnections()
		server.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
	}
	cleanup()
	os.Exit(0)
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-listen %q: %s", addr, err)
	}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	// A role test's host reaches the simulator over the private bridge the test made: such an
	// address (private, and one of this machine's own) is allowed, nothing that may face a network.
	if ip != nil && ip.IsPrivate() && localAddress(ip) {
		return nil
	}
	return fmt.Errorf("-listen %q: only loopback or a private address of this machine is allowed", addr)
}

func localAddress(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// datacenterOf walks up the inventory; reading the registry directly is safe
// here because nothing is served yet.
func datacenterOf(e mo.Entity) *simulator.Datacenter {
	for e != nil {
		if dc, ok := e.(*simulator.Datacenter); ok {
			return dc
		}
		parent := e.Entity().Parent
		if parent == nil {
			return nil
		}
		e, _ = simulator.Map.Get(*parent).(mo.Entity)
	}
	return nil
}

// addDatastore mounts a new local datastore called name on every host. Like
// the model's LocalDS_N it gets one directory per datacenter, because the
// simulator keys a datastore by path and datastore folder.
func addDatastore(ctx context.Context, c *vim25.Client, name string) ([]string, error) {
	dirs := map[*simulator.Datacenter]string{}
	var created []string
	for _, e := range simulator.Map.All("HostSystem") {
		host := e.(*simulator.HostSystem)
		dc := datacenterOf(host)
		dir, ok := dirs[dc]
		if !ok {
			var err error
			if dir, err = os.MkdirTemp("", "vcsim-"+name+"-"); err != nil {
				return created, err
			}
			dirs[dc] = dir
			created = append(created, dir)
		}
		dss := object.NewHostDatastoreSystem(c, *host.ConfigManager.DatastoreSystem)
		if _, err := dss.CreateLocalDatastore(ctx, name, dir); err != nil {
			return created, fmt.Errorf("host %s: %s", host.Name, err)
		}
	}
	return created, nil
}

// addVMs creates n bare VMs in the root pool of the first cluster (or of the
// first standalone compute resource, which is the only one in esx mode).
// CreateVM_Task runs synchronously in the simulator, so the task is read
// from the registry instead of waiting on it through a PropertyCollector.
func addVMs(ctx context.Context, c *vim25.Client, n int) error {
	if n <= 0 {
		return nil
	}
	cr := firstComputeResource()
	if cr == nil || cr.ResourcePool == nil {
		return fmt.Errorf("no compute resource to place VMs in")
	}
	dc := datacenterOf(cr)
	var dsNames []string
	for _, ref := range cr.Datastore {
		if ds, ok := simulator.Map.Get(ref).(*simulator.Datastore); ok {
			dsNames = append(dsNames, ds.Name)
		}
	}
	if dc == nil || len(dsNames) == 0 {
		return fmt.Errorf("compute resource %s has no datacenter or datastore", cr.Name)
	}
	sort.Strings(dsNames)

	for i := 0; i < n; i++ {
		req := types.CreateVM_Task{
			This: dc.VmFolder,
			Pool: *cr.ResourcePool,
			Config: types.VirtualMachineConfigSpec{
				Name:     fmt.Sprintf("bench-vm-%04d", i),
				GuestId:  string(types.VirtualMachineGuestOsIdentifierOtherGuest),
				NumCPUs:  1,
				MemoryMB: 128,
				Files:    &types.VirtualMachineFileInfo{VmPathName: "[" + dsNames[0] + "]"},
			},
		}
		res, err := methods.CreateVM_Task(ctx, c, &req)
		if err != nil {
			return err
		}
		task, ok := simulator.Map.Get(res.Returnval).(*simulator.Task)
		if !ok {
			return fmt.Errorf("task %s vanished", res.Returnval)
		}
		if task.Info.Error != nil {
			return fmt.Errorf("%s: %s", req.Config.Name, task.Info.Error.LocalizedMessage)
		}
	}
	return nil
}

func firstComputeResource() *mo.ComputeResource {
	var all []*mo.ComputeResource
	for _, e := range simulator.Map.All("ClusterComputeResource") {
		all = append(all, &e.(*simulator.ClusterComputeResource).ComputeResource)
	}
	if len(all) == 0 {
		for _, e := range simulator.Map.All("ComputeResource") {
			if cr, ok := e.(*mo.ComputeResource); ok {
				all = append(all, cr)
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all[0]
}

// datastoreDirs maps datastore names to their backing directories. With
// several datacenters a name repeats; the lowest moref wins, deterministically.
func datastoreDirs() map[string]string {
	all := simulator.Map.All("Datastore")
	sort.Slice(all, func(i, j int) bool { return all[i].Reference().Value < all[j].Reference().Value })
	dirs := map[string]string{}
	for _, e := range all {
		ds := e.(*simulator.Datastore)
		if _, dup := dirs[ds.Name]; !dup {
			dirs[ds.Name] = ds.Info.GetDatastoreInfo().Url
		}
	}
	return dirs
}

type fault struct {
	Method string `json:"method"`
	Count  int    `json:"count"`
	Skip   int    `json:"skip"`
}

// harness sits in front of the simulator's mux: it counts and logs every
// request and answers armed faults before the simulator sees the call, and
// the calls the simulator lacks (see updateVAppConfig) after logging them.
type harness struct {
	next http.Handler
	log  *os.File
	vim  *vim25.Client // in process, for reads the simulator does not export

	mu     sync.Mutex
	soap   int
	http   int
	faults map[string]*fault
}

type entry struct {
	Time   float64 `json:"time"`
	Method string  `json:"method,omitempty"`
	This   *string `json:"this,omitempty"`
	Fault  bool    `json:"fault,omitempty"`
	HTTP   string  `json:"http,omitempty"`
	Path   string  `json:"path,omitempty"`
}

func (h *harness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/vcsim/") {
		h.control(w, r)
		return
	}

	var body []byte
	var method, this string
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/sdk") {
		var err error
		body, err = io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		method, this = soapCall(body)
	}

	now := float64(time.Now().UnixNano()) / 1e9
	h.mu.Lock()
	var e entry
	if method == "" {
		h.http++
		e = entry{Time: now, HTTP: r.Method, Path: r.URL.Path, Fault: h.tripHTTP(r)}
	} else {
		h.soap++
		e = entry{Time: now, Method: method, This: &this, Fault: h.trip(method)}
	}
	if h.log != nil {
		line, _ := json.Marshal(e)
		// One write per line (the file is unbuffered and O_APPEND), made
		// under the lock so concurrent requests never interleave lines.
		_, _ = h.log.Write(append(line, '\n'))
	}
	h.mu.Unlock()

	if e.Fault && method == "" {
		http.Error(w, "vcsim: injected fault in "+r.Method+" "+r.URL.Path, http.StatusInternalServerError)
		return
	}
	if e.Fault {
		writeFault(w, method)
		return
	}
	if method == "UpdateConfig" && strings.HasPrefix(this, "VirtualApp:") &&
		r.URL.Path == simulator.Map.Path && h.updateVAppConfig(w, r, body) {
		return
	}
	h.next.ServeHTTP(w, r)
}

// updateVAppConfig answers UpdateConfig on a VirtualApp, which real vSphere
// inherits from ResourcePool but vcsim 0.24 answers with MethodNotFound: its
// VirtualApp has only a few pool methods, delegated to a copy of the pool.
// It returns false, leaving the call to the simulator and its faults, unless
// the simulator would have dispatched the call: a live session, an existing
// vApp, and no UpdateConfig of the simulator's own to dispatch to.
func (h *harness) updateVAppConfig(w http.ResponseWriter, r *http.Request, body []byte) bool {
	call, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		return false
	}
	req, ok := call.Body.(*types.UpdateConfig)
	if !ok {
		return false
	}
	vapp, ok := simulator.Map.Get(req.This).(*simulator.VirtualApp)
	if !ok || reflect.ValueOf(vapp).MethodByName(call.Name).IsValid() || !h.authenticated(r) {
		return false
	}

	res := &methods.UpdateConfigBody{}
	for _, name := range vapp.DisabledMethod {
		if name == call.Name {
			msg := fmt.Sprintf("%s method is disabled: %s", req.This, call.Name)
			res.Fault_ = simulator.Fault(msg, &types.MethodDisabled{})
		}
	}
	if res.Fault_ == nil {
		// Under the lock the simulator would hold for the call, run
		// ResourcePool.UpdateConfig on a copy of the vApp's pool part, as
		// VirtualApp.CreateVApp does, and keep the two fields it changes
		// (also when it faults half way: a pool keeps them too).
		simulator.Map.WithLock(vapp, func() {
			pool := &simulator.ResourcePool{ResourcePool: vapp.ResourcePool}
			res = pool.UpdateConfig(req).(*methods.UpdateConfigBody)
			vapp.Name = pool.Name
			vapp.Config = pool.Config
		})
	}
	writeSOAP(w, res)
	return true
}

// authenticated reports whether r carries the cookie of a live session, as
// ServeSDK requires for every call but a few read-only ones. The simulator
// keeps its session table unexported, but lists it as the SessionManager's
// sessionList to the in-process client.
func (h *harness) authenticated(r *http.Request) bool {
	cookie, err := r.Cookie(soap.SessionCookieName)
	if err != nil {
		return false
	}
	var sm mo.SessionManager
	pc := property.DefaultCollector(h.vim)
	if err := pc.RetrieveOne(r.Context(), *h.vim.ServiceContent.SessionManager, []string{"sessionList"}, &sm); err != nil {
		log.Printf("sessionList: %s", err)
		return false
	}
	for _, s := range sm.SessionList {
		if s.Key == cookie.Value {
			return true
		}
	}
	return false
}

// writeSOAP writes res the way simulator.ServeSDK does: HTTP 200 and the
// response element, or HTTP 500 and the fault.
func writeSOAP(w http.ResponseWriter, res soap.HasFault) {
	status := http.StatusOK
	var body interface{} = &soapResponse{Namespace: vim25.Namespace, Body: res}
	if f := res.Fault(); f != nil {
		status = http.StatusInternalServerError
		fault := &soapFault{Code: f.Code, String: f.String}
		fault.Detail.Fault = &faultDetail{f.Detail.Fault}
		body = struct{ Fault *soapFault }{fault}
	}

	var out bytes.Buffer
	out.WriteString(vimxml.Header)
	enc := vimxml.NewEncoder(&out)
	err := enc.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: body,
	})
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		log.Printf("encoding %T: %s", res, err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(out.Bytes())
}

// soapEnvelope, soapFault, faultDetail and soapResponse copy the unexported
// types simulator.ServeSDK encodes its answers with.
type soapEnvelope struct {
	XMLName vimxml.Name `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type soapFault struct {
	XMLName vimxml.Name `xml:"soapenv:Fault"`
	Code    string      `xml:"faultcode"`
	String  string      `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

type faultDetail struct {
	Fault types.AnyType
}

// MarshalXML names the element "${Type}Fault", with xsi:type, as clients
// such as pyVmomi expect.
func (d *faultDetail) MarshalXML(e *vimxml.Encoder, start vimxml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		vimxml.Attr{Name: vimxml.Name{Local: "xmlns"}, Value: "urn:" + vim25.Namespace},
		vimxml.Attr{Name: vimxml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

// soapResponse encodes the Res field of a methods.*Body inside the Body
// element, named after its type in the vim25 namespace.
type soapResponse struct {
	Namespace string
	Body      soap.HasFault
}

func (r *soapResponse) MarshalXML(e *vimxml.Encoder, start vimxml.StartElement) error {
	val := reflect.ValueOf(r.Body).Elem().FieldByName("Res")
	if !val.IsValid() || val.IsNil() {
		return fmt.Errorf("%T: no response", r.Body)
	}
	res := vimxml.StartElement{
		Name: vimxml.Name{Space: "urn:" + r.Namespace, Local: val.Elem().Type().Name()},
	}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeElement(val.Interface(), res); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

// trip reports whether this call of method must fail. Callers hold h.mu.
func (h *harness) trip(method string) bool {
	f := h.faults[method]
	switch {
	case f == nil:
		return false
	case f.Skip > 0:
		f.Skip--
		return false
	}
	f.Count--
	if f.Count <= 0 {
		delete(h.faults, method)
	}
	return true
}

// tripHTTP reports whether this plain HTTP request (a datastore file transfer) must fail: a fault armed
// for "<HTTP method> <suffix>" trips on the requests of that method whose path ends with the suffix
// ("PUT .json", "PUT -flat.vmdk"). Callers hold h.mu.
func (h *harness) tripHTTP(r *http.Request) bool {
	for key := range h.faults {
		suffix := strings.TrimPrefix(key, r.Method+" ")
		if suffix != key && strings.HasSuffix(r.URL.Path, suffix) {
			return h.trip(key)
		}
	}
	return false
}

func (h *harness) control(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()

	var reply interface{}
	switch {
	case r.URL.Path == "/vcsim/calls" && r.Method == http.MethodGet:
		reply = map[string]int{"soap": h.soap, "http": h.http}
	case r.URL.Path == "/vcsim/fault" && r.Method == http.MethodPost:
		f := &fault{Count: 1}
		if err := json.NewDecoder(r.Body).Decode(f); err != nil || f.Method == "" || f.Count < 1 || f.Skip < 0 {
			http.Error(w, `want {"method": NAME, "count": N>=1, "skip": N>=0}`, http.StatusBadRequest)
			return
		}
		h.faults[f.Method] = f
		reply = f
	case r.URL.Path == "/vcsim/fault" && r.Method == http.MethodDelete:
		h.faults = map[string]*fault{}
		reply = map[string]bool{"cleared": true}
	case r.URL.Path == "/vcsim/fault" && r.Method == http.MethodGet:
		reply = h.faults
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}

// soapCall returns the name of the first element inside the SOAP Body and
// its _this child as "Type:value". Both are empty if body is not SOAP.
func soapCall(body []byte) (method, this string) {
	d := xml.NewDecoder(bytes.NewReader(body))
	depth, bodyDepth := 0, -1
	for {
		tok, err := d.Token()
		if err != nil {
			return method, this
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case bodyDepth < 0 && t.Name.Local == "Body":
				bodyDepth = depth
			case bodyDepth > 0 && method == "" && depth == bodyDepth+1:
				method = t.Name.Local
			case method != "" && depth == bodyDepth+2 && t.Name.Local == "_this":
				var value string
				if d.DecodeElement(&value, &t) != nil {
					return method, this
				}
				for _, a := range t.Attr {
					if a.Name.Local == "type" {
						this = a.Value
					}
				}
				return method, this + ":" + strings.TrimSpace(value)
			}
		case xml.EndElement:
			depth--
			if method != "" && depth <= bodyDepth {
				return method, this
			}
		}
	}
}

// writeFault answers like vCenter does for a failed call, so that pyVmomi
// raises vim.fault.SystemError rather than a transport or parse error.
func writeFault(w http.ResponseWriter, method string) {
	var msg bytes.Buffer
	_ = xml.EscapeText(&msg, []byte("vcsim: injected fault in "+method))
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>
<soapenv:Fault>
<faultcode>ServerFaultCode</faultcode>
<faultstring>%[1]s</faultstring>
<detail>
<SystemErrorFault xmlns="urn:vim25" xsi:type="SystemError"><reason>%[1]s</reason></SystemErrorFault>
</detail>
</soapenv:Fault>
</soapenv:Body>
</soapenv:Envelope>
`, msg.String())
}
