// A theme file for ImageGallery: warm dusk colours over the Dark theme.
//   imagegallery --theme examples/themes/Sunset.qml
// Every save of this file restyles the running app at once. See docs/themes.md.
import ImageGallery 1.0

DarkTheme {
    name: "sunset"

    window: "#2b1b2e"
    surface: "#3a2340"
    text: "#fde8d7"
    textMuted: "#d9a99a"
    border: "#5c3a5e"
    accent: "#ff8a5b"
    accentText: "#2b1b2e"
    button: "#4a2c4f"
    buttonText: "#fde8d7"
    field: "#452a4a"
    fieldText: "#fde8d7"
    focusRing: "#ffc15e"

    tile: "#3a2340"
    tileHover: "#4a2c4f"
    tilePressed: "#5a3660"
    tileSelected: "#6b3a4a"
    tileBorder: "#5c3a5e"
    placeholder: "#452a4a"
    progress: "#ff8a5b"

    radius: 10
}
