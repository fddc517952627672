package k6output

import (
	"reflect"
	"strings"
	"testing"
)

func TestConfigPrecedence(t *testing.T) {
	tests := []struct {
		name string
		arg  string
		json string
		env  map[string]string
		want map[string]string // engine keys
		tf   string            // tagsAsFields, as Name:type,...
	}{
		{
			name: "defaults are k6's",
			want: map[string]string{"INFLUXDB_URL": "http://localhost:8086"},
			tf:   "vu:string,iter:string,url:string",
		},
		{
			name: "k6 URL argument with credentials, db and query",
			arg:  "https://me:s3cr%3Bt@influx:8087/perf?precision=ms&pushInterval=250ms&concurrentWrites=2&tagsAsFields=vu:int&tagsAsFields=url&insecure=true&retention=rp1",
			want: map[string]string{
				"INFLUXDB_URL": "https://influx:8087", "INFLUXDB_DB": "perf", "INFLUXDB_USERNAME": "me",
				"INFLUXDB_PASSWORD": "s3cr;t", "INFLUXDB_PRECISION": "ms", "PERFSINK_FLUSH_INTERVAL_MS": "250",
				"PERFSINK_CONCURRENCY": "2", "INFLUXDB_INSECURE_SKIP_VERIFY": "true", "INFLUXDB_RP": "rp1",
			},
			tf: "vu:int,url:string",
		},
		{
			name: "JSON < K6_INFLUXDB_* < argument",
			json: `{"addr":"http://json:1","db":"jsondb","pushInterval":"3s","concurrentWrites":3,"tagsAsFields":["a:float","b"]}`,
			env:  map[string]string{"K6_INFLUXDB_ADDR": "http://env:2", "K6_INFLUXDB_PUSH_INTERVAL": "2s", "K6_INFLUXDB_TAGS_AS_FIELDS": "c:bool"},
			arg:  "K6_INFLUXDB_PUSH_INTERVAL=1500ms",
			want: map[string]string{
				"INFLUXDB_URL": "http://env:2", "INFLUXDB_DB": "jsondb", "PERFSINK_FLUSH_INTERVAL_MS": "1500",
				"PERFSINK_CONCURRENCY": "3",
			},
			tf: "c:bool",
		},
		{
			name: "a JSON pushInterval number is milliseconds",
			json: `{"pushInterval": 750}`,
			want: map[string]string{"INFLUXDB_URL": "http://localhost:8086", "PERFSINK_FLUSH_INTERVAL_MS": "750"},
			tf:   "vu:string,iter:string,url:string",
		},
		{
			name: "INFLUXDB_*/PERFSINK_* win over K6_INFLUXDB_*, and the argument over the environment",
			env: map[string]string{
				"K6_INFLUXDB_ADDR": "http://k6:1", "K6_INFLUXDB_DB": "k6db", "K6_INFLUXDB_CONCURRENT_WRITES": "9",
				"INFLUXDB_URL": "http://ours:2/oursdb", "PERFSINK_CONCURRENCY": "5", "PERFSINK_TAGS": "testid=a",
				"INFLUXDB_HTTP_BIND_ADDRESS": ":1", // influxd's, ignored
				"HOME":                       "/root",
			},
			arg: `PERFSINK_TAGS=testid=b\;c;PERFSINK_SPOOL_DIR=/tmp/x`,
			want: map[string]string{
				"INFLUXDB_URL": "http://ours:2", "INFLUXDB_DB": "oursdb", "PERFSINK_CONCURRENCY": "5",
				"PERFSINK_TAGS": "testid=b;c", "PERFSINK_SPOOL_DIR": "/tmp/x",
			},
			tf: "vu:string,iter:string,url:string",
		},
		{
			name: "an empty INFLUXDB_URL disables reporting",
			env:  map[string]string{"INFLUXDB_URL": ""},
			want: map[string]string{"INFLUXDB_URL": ""},
			tf:   "vu:string,iter:string,url:string",
		},
		{
			name: "v2 credentials in JSON (xk6-output-influxdb names) and engine keys in JSON",
			json: `{"addr":"http://v2:8086","organization":"o","bucket":"b","token":"t","insecureSkipTLSVerify":true,"PERFSINK_GZIP_LEVEL":"6"}`,
			want: map[string]string{
				"INFLUXDB_URL": "http://v2:8086", "INFLUXDB_ORG": "o", "INFLUXDB_BUCKET": "b", "INFLUXDB_TOKEN": "t",
				"INFLUXDB_INSECURE_SKIP_VERIFY": "true", "PERFSINK_GZIP_LEVEL": "6",
			},
			tf: "vu:string,iter:string,url:string",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(tc.arg, []byte(tc.json), tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Engine, tc.want) {
				t.Errorf("engine\n got %v\nwant %v", c.Engine, tc.want)
			}
			var tf []string
			for _, f := range c.TagsAsFields {
				tf = append(tf, f.Name+":"+f.Type.String())
			}
			if got := strings.Join(tf, ","); got != tc.tf {
				t.Errorf("tagsAsFields %q, want %q", got, tc.tf)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		arg, json string
		env       map[string]string
		want      string
	}{
		{arg: "udp://h:8089", want: "UDP is not supported"},
		{arg: "http://h:1/db?bogus=1", want: `unknown query key "bogus"`},
		{arg: "http://h:1/db?precision=u", want: `precision "u" is not supported`},
		{arg: "NOPE=1", want: `unknown key "NOPE"`},
		{arg: "justtext", want: "not KEY=value"},
		{json: `{"adr":"x"}`, want: `unknown JSON config key "adr"`},
		{json: `[1]`, want: "must be an object"},
		{env: map[string]string{"K6_INFLUXDB_TAGS_AS_FIELDS": "vu:integer"}, want: `invalid type "integer"`},
		{env: map[string]string{"K6_INFLUXDB_TAGS_AS_FIELDS": "value"}, want: "collide"},
		{env: map[string]string{"K6_INFLUXDB_TAGS_AS_FIELDS": "a,a:int"}, want: "listed twice"},
		{env: map[string]string{"K6_INFLUXDB_CONCURRENT_WRITES": "0"}, want: "positive integer"},
		{env: map[string]string{"K6_INFLUXDB_PUSH_INTERVAL": "soon"}, want: "not a duration"},
		{env: map[string]string{"K6_INFLUXDB_PROXY": "http://p:3128"}, want: "proxy"},
		{env: map[string]string{"K6_INFLUXDB_INSECURE": "maybe"}, want: "not a boolean"},
	}
	for _, tc := range tests {
		_, err := ParseConfig(tc.arg, []byte(tc.json), tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("arg %q json %q env %v: error %v, want %q", tc.arg, tc.json, tc.env, err, tc.want)
		}
	}
}

// A password must never appear in an error about its URL.
func TestConfigErrorsHideSecrets(t *testing.T) {
	_, err := ParseConfig("http://u:topsecret@h:1/%zz", nil, nil)
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("error %v", err)
	}
}

func TestConfigWarnings(t *testing.T) {
	c, err := ParseConfig("http://h:1/db?consistency=all&payload_size=512", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 2 {
		t.Fatalf("warnings %v", c.Warnings)
	}
}

func TestDescribeHidesCredentials(t *testing.T) {
	c, err := ParseConfig("http://u:pw@h:1/db", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Describe(); d != "http://h:1, db db" {
		t.Fatalf("Describe() = %q", d)
	}
}
