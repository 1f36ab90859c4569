package schema

// field identifies a wire field the decoder knows.
type field uint8

const (
	fType field = iota
	fEventID
	fPlayerID
	fSessionID
	fTS
	fAttributes
	fTraceparent
	fAuthMethod
	fClientVersion
	fPlatform
	fGameMode
	fLobbyID
	fWaitSeconds
	fReason
	fLoadingType
	fAssetsLoaded
	fTotalSizeMB
	fServerID
	fMap
	fResult
	fScore
	numFields
	fUnknown = numFields
)

var fieldNames = [numFields]string{
	fType:          "type",
	fEventID:       "event_id",
	fPlayerID:      "player_id",
	fSessionID:     "session_id",
	fTS:            "ts",
	fAttributes:    "attributes",
	fTraceparent:   "traceparent",
	fAuthMethod:    "auth_method",
	fClientVersion: "client_version",
	fPlatform:      "platform",
	fGameMode:      "game_mode",
	fLobbyID:       "lobby_id",
	fWaitSeconds:   "wait_seconds",
	fReason:        "reason",
	fLoadingType:   "loading_type",
	fAssetsLoaded:  "assets_loaded",
	fTotalSizeMB:   "total_size_mb",
	fServerID:      "server_id",
	fMap:           "map",
	fResult:        "result",
	fScore:         "score",
}

// lookupField maps a key to its field; the switch on string(key) compiles to
// comparisons without allocating.
func lookupField(key []byte) field {
	switch string(key) {
	case "type":
		return fType
	case "event_id":
		return fEventID
	case "player_id":
		return fPlayerID
	case "session_id":
		return fSessionID
	case "ts":
		return fTS
	case "attributes":
		return fAttributes
	case "traceparent":
		return fTraceparent
	case "auth_method":
		return fAuthMethod
	case "client_version":
		return fClientVersion
	case "platform":
		return fPlatform
	case "game_mode":
		return fGameMode
	case "lobby_id":
		return fLobbyID
	case "wait_seconds":
		return fWaitSeconds
	case "reason":
		return fReason
	case "loading_type":
		return fLoadingType
	case "assets_loaded":
		return fAssetsLoaded
	case "total_size_mb":
		return fTotalSizeMB
	case "server_id":
		return fServerID
	case "map":
		return fMap
	case "result":
		return fResult
	case "score":
		return fScore
	}
	return fUnknown
}

// keysByFirst lists the known field names by their first byte, for
// matchKnownKey.
var keysByFirst = func() (t [256][]field) {
	for f := range numFields {
		t[fieldNames[f][0]] = append(t[fieldNames[f][0]], f)
	}
	return t
}()

// matchKnownKey reports whether the key whose body starts at b[i] is a known
// field name written without escapes, and returns it with the offset of its
// closing quote. Most keys of a record are known, so this saves scanning them
// as general strings; any other key returns false.
func matchKnownKey(b []byte, i int) (field, int, bool) {
	if i >= len(b) {
		return fUnknown, 0, false
	}
	for _, f := range keysByFirst[b[i]] {
		name := fieldNames[f]
		end := i + len(name)
		// The second byte tells apart all but session_id and server_id
		// before the full comparison.
		if end < len(b) && b[i+1] == name[1] && b[end] == '"' && string(b[i:end]) == name {
			return f, end, true
		}
	}
	return fUnknown, 0, false
}

// typeField is one type-specific field of an event type.
type typeField struct {
	f        field
	required bool
}

// typeFields lists, per type and in wire order, the type-specific fields. It
// is the single source of the contract table in doc.go and v1.schema.json.
var typeFields = [numTypes][]typeField{
	SessionLogin:        {{fAuthMethod, false}, {fClientVersion, false}, {fPlatform, false}},
	MatchmakingEnter:    {{fGameMode, true}},
	MatchmakingComplete: {{fLobbyID, true}, {fWaitSeconds, false}},
	MatchmakingCancel:   {{fReason, false}},
	LoadingStart:        {{fLoadingType, true}},
	LoadingFinish:       {{fAssetsLoaded, false}, {fTotalSizeMB, false}},
	GameEnter:           {{fServerID, true}, {fMap, true}},
	GameLeave:           {{fResult, false}, {fScore, false}},
	SessionDisconnect:   {{fReason, false}},
}

// stringField returns a pointer to the Event field that holds string field f,
// or nil when f is not a string field.
func stringField(ev *Event, f field) *string {
	switch f {
	case fAuthMethod:
		return &ev.AuthMethod
	case fClientVersion:
		return &ev.ClientVersion
	case fPlatform:
		return &ev.Platform
	case fGameMode:
		return &ev.GameMode
	case fLobbyID:
		return &ev.LobbyID
	case fReason:
		return &ev.Reason
	case fLoadingType:
		return &ev.LoadingType
	case fServerID:
		return &ev.ServerID
	case fMap:
		return &ev.Map
	case fResult:
		return &ev.Result
	}
	return nil
}
