package sqlstore

import "testing"

func TestRebind(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"none", `SELECT 1`, `SELECT 1`},
		{"args", `UPDATE t SET a = ?, b = ? WHERE c = ?`, `UPDATE t SET a = $1, b = $2 WHERE c = $3`},
		{"quoted", `SELECT '?' || "x?" FROM t WHERE a = ?`, `SELECT '?' || "x?" FROM t WHERE a = $1`},
		{"escaped quote", `SELECT 'it''s?' WHERE a = ?`, `SELECT 'it''s?' WHERE a = $1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Rebind(tt.in); got != tt.want {
				t.Errorf("Rebind(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
