package api

// SenseTarget is GET /v1/sense/target: the governed false-alarm target of
// sensing (protocol 6, sensing model 2).
type SenseTarget struct {
	AlertsPerDayMilli int64 `json:"alerts_per_day_milli"` // alerts per entity-day at normal posture, thousandths
	Protocol          int64 `json:"protocol"`             // the kernel's protocol; the target is used from 5 on
	Model             int64 `json:"model"`                // the sensing model the gate runs: 1 before protocol 6, 2 from it
}

// SenseTargetRequest is POST /v1/sense/target (operator.manage on sense).
type SenseTargetRequest struct {
	AlertsPerDayMilli int64 `json:"alerts_per_day_milli"`
}

// SenseTargetResponse answers sense target set.
type SenseTargetResponse struct {
	Outcome
	Target SenseTarget `json:"target"`
}
