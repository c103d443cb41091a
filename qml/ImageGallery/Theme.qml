pragma Singleton
import QtQuick 2.15
import "themes"

// Every colour, size and font the components use, read as `Theme.accent`. The values come from
// `current`: a built-in theme chosen by `name`, or `custom` (a ThemeData object, e.g. from a
// ThemeLoader) when set. Swapping either re-evaluates these bindings, so every component
// restyles at once; nothing reloads, and images keep their pixels.
QtObject {
    id: root

    // The built-in themes, in the order a theme switcher lists them.
    readonly property var names: ["light", "dark", "high-contrast"]
    property string name: "light"
    property QtObject custom: null  // a ThemeData, possibly from a ThemeLoader's engine

    readonly property QtObject current: custom ? custom
                                       : name === "dark" ? dark
                                       : name === "high-contrast" ? highContrast
                                       : light

    readonly property ThemeData light: Light {}
    readonly property ThemeData dark: Dark {}
    readonly property ThemeData highContrast: HighContrast {}

    readonly property color window: current.window
    readonly property color surface: current.surface
    readonly property color text: current.text
    readonly property color textMuted: current.textMuted
    readonly property color border: current.border
    readonly property color accent: current.accent
    readonly property color accentText: current.accentText
    readonly property color button: current.button
    readonly property color buttonText: current.buttonText
    readonly property color field: current.field
    readonly property color fieldText: current.fieldText
    readonly property color focusRing: current.focusRing
    readonly property color tile: current.tile
    readonly property color tileHover: current.tileHover
    readonly property color tilePressed: current.tilePressed
    readonly property color tileSelected: current.tileSelected
    readonly property color tileBorder: current.tileBorder
    readonly property color placeholder: current.placeholder
    readonly property color progressTrack: current.progressTrack
    readonly property color progress: current.progress
    readonly property color error: current.error
    readonly property color errorSurface: current.errorSurface
    readonly property int spacing: current.spacing
    readonly property int spacingSmall: current.spacingSmall
    readonly property int tilePadding: current.tilePadding
    readonly property int radius: current.radius
    readonly property int radiusSmall: current.radiusSmall
    readonly property int borderWidth: current.borderWidth
    readonly property int focusWidth: current.focusWidth
    readonly property int toolBarHeight: current.toolBarHeight
    readonly property int progressHeight: current.progressHeight
    readonly property string fontFamily: current.fontFamily
    readonly property int fontPixelSize: current.fontPixelSize
    readonly property int smallFontPixelSize: current.smallFontPixelSize
}
