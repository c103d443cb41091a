import QtQuick 2.15

// The typed record every theme fills in. A theme file is `ThemeData { ... }` (or extends a
// built-in: `DarkTheme { accent: "#ff8800" }`); a misspelt or mistyped property is a QML error
// with file and line, not a silently ignored key. Properties a theme leaves out keep these
// defaults, which are the Light palette, so a partial theme still draws every part. Each
// background is drawn only with the text colours meant for it (docs/themes.md, "Colours that go
// together"): a theme that changes one colour of such a pair should change the other.
QtObject {
    id: root

    property string name: "custom"

    // Surfaces and text
    property color window: "#f4f5f7"
    property color surface: "#ffffff"
    property color text: "#1d2330"
    property color textMuted: "#5f6b7a"
    property color border: "#d5d9e0"
    property color accent: "#2f6fed"
    property color accentText: "#ffffff"
    property color button: "#e6e9ef"
    property color buttonText: "#1d2330"
    property color field: "#ffffff"
    property color fieldText: "#1d2330"
    property color focusRing: "#2f6fed"

    // Tiles
    property color tile: "#ffffff"
    property color tileHover: "#eef2fb"
    property color tilePressed: "#dfe7f8"
    property color tileSelected: "#d3e1ff"
    property color tileBorder: "#d5d9e0"
    property color placeholder: "#e8eaee"
    property color progressTrack: "#d5d9e0"
    property color progress: "#2f6fed"
    property color error: "#c62828"
    property color errorSurface: "#fdecea"

    // Geometry
    property int spacing: 8
    property int spacingSmall: 4
    property int tilePadding: 6
    property int radius: 6
    property int radiusSmall: 3
    property int borderWidth: 1
    property int focusWidth: 2
    property int toolBarHeight: 44
    property int progressHeight: 4

    // Type
    property string fontFamily: Qt.application.font.family
    property int fontPixelSize: 13
    property int smallFontPixelSize: 11
}
