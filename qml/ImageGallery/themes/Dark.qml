import QtQuick 2.15

ThemeData {
    name: "dark"

    window: "#16181d"
    surface: "#20232a"
    text: "#e6e9ef"
    textMuted: "#9aa3b2"
    border: "#343946"
    accent: "#5b9cff"
    accentText: "#0b1220"
    button: "#323845"
    buttonText: "#e6e9ef"
    field: "#2a2e37"
    fieldText: "#e6e9ef"
    focusRing: "#8ab4ff"

    tile: "#23262e"
    tileHover: "#2c313b"
    tilePressed: "#353c49"
    tileSelected: "#1f3a66"
    tileBorder: "#343946"
    placeholder: "#2a2e37"
    progressTrack: "#3a404c"
    progress: "#5b9cff"
    error: "#ff6b6b"
    errorSurface: "#3a2226"
}
