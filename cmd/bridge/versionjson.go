package main

import "github.com/seed-3f9f6f16/bridge/bridge/settings"

// versionView is `bridge version -o json`.
type versionView struct {
	Version   string        `json:"version"`
	Commit    string        `json:"commit"`
	Date      string        `json:"date"`
	GoVersion string        `json:"go"`
	OS        string        `json:"os"`
	Arch      string        `json:"arch"`
	Settings  []settingView `json:"settings"`
	// SettingsError says why the settings could not be resolved.
	SettingsError string `json:"settings_error,omitempty"`
}

type settingView struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Source  string `json:"source"` // "" when not set
	Locked  bool   `json:"locked,omitempty"`
	Ignored string `json:"ignored,omitempty"`
}

func versionJSON(opts *VersionOptions) error {
	b := opts.Build
	v := versionView{Version: b.Version, Commit: b.Commit, Date: b.Date, GoVersion: b.GoVersion, OS: b.OS, Arch: b.Arch, Settings: []settingView{}}
	home, err := opts.F.Home()
	if err == nil {
		prof, perr := loadProfile(home)
		err = perr
		if err == nil {
			s, serr := resolveSettings(opts.ManagedPath, b.BuiltIn, home, prof, settings.Values{})
			err = serr
			if err == nil {
				for _, st := range s.All() {
					v.Settings = append(v.Settings, settingView{Key: st.Key, Value: st.Value, Source: st.Source, Locked: st.Locked, Ignored: st.Ignored})
				}
			}
		}
	}
	if err != nil {
		v.SettingsError = err.Error()
	}
	return writeJSONOut(opts.F.IO.Out, v)
}
