package dirty

import . "time"

func Dot() Duration {
	_ = Now()
	return Second
}
