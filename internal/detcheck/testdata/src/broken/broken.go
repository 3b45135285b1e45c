// Package broken does not type-check, so detcheck must refuse it.
package broken

func F() int { return "not an int" }
