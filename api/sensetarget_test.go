package api

import "reflect"

func init() {
	schemaTypes["SenseTarget"] = reflect.TypeFor[SenseTarget]()
	schemaTypes["SenseTargetRequest"] = reflect.TypeFor[SenseTargetRequest]()
	schemaTypes["SenseTargetResponse"] = reflect.TypeFor[SenseTargetResponse]()
}
