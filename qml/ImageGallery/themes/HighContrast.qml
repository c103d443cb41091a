import QtQuick 2.15

// Pure black and white with yellow and cyan marks; thicker borders and focus ring, larger type.
ThemeData {
    name: "high-contrast"

    window: "#000000"
    surface: "#000000"
    text: "#ffffff"
    textMuted: "#ffffff"
    border: "#ffffff"
    accent: "#ffff00"
    accentText: "#000000"
    button: "#000000"
    buttonText: "#ffff00"
    field: "#000000"
    fieldText: "#ffffff"
    focusRing: "#00ffff"

    tile: "#000000"
    tileHover: "#1f1f1f"
    tilePressed: "#3d3d3d"
    tileSelected: "#00306e"
    tileBorder: "#ffffff"
    placeholder: "#000000"
    progressTrack: "#ffffff"
    progress: "#ffff00"
    error: "#ff5c5c"
    errorSurface: "#000000"

    borderWidth: 2
    focusWidth: 3
    fontPixelSize: 15
    smallFontPixelSize: 13
}
