package mcpgateway

import "testing"

func TestCanonicalizeRFC8785(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// RFC 8785 §3.2.2 and Appendix B.
		{`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control\u007f","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\u007f\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{`[0, -0, 1e21, 1e20, 0.000001, 1e-7, -1.5e-9, 9007199254740993]`, `[0,0,1e+21,100000000000000000000,0.000001,1e-7,-1.5e-9,9007199254740992]`},
		{` { "path" : "/a" , "b" : [ ] } `, `{"b":[],"path":"/a"}`},
	} {
		got, err := Canonicalize([]byte(c.in))
		if err != nil || string(got) != c.want {
			t.Errorf("%s:\n got %s (%v)\nwant %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{``, `{`, `1e400`, `{} {}`} {
		if _, err := Canonicalize([]byte(bad)); err == nil {
			t.Errorf("%q canonicalized", bad)
		}
	}
}
