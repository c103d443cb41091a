pragma Singleton
import QtQuick 2.15
import "themes"

// Every colour, size and font the components use, read as `Theme.accent`. The values come from
// `current`: a built-in theme chosen by `name`, or `custom` (a ThemeData object, e.g. from a
// ThemeLoader) when set. Swapping either re-evaluates these bindings, so every component
// restyles at once; nothing reloads, and images keep their pixels.
QtObject {
    id: root

    readonly property ThemeData light: Light {}
    readonly property ThemeData dark: Dark {}
    readonly property ThemeData highContrast: HighContrast {}
    // The built-in themes, in the order a theme switcher lists them; `name` picks one by its
    // own name.
    readonly property var builtIns: [light, dark, highContrast]
    readonly property var names: builtIns.map(function (theme) { return theme.name })

    property string name: "light"
    property QtObject custom: null  // a ThemeData, possibly from a ThemeLoader's engine
    // A mistyped name shows the light theme; said, so the typo is found.
    onNameChanged: {
        if (names.indexOf(name) < 0)
            console.warn("Theme.name: no built-in theme '" + name + "' (" + names.join(", ")
                         + "); showing light")
    }

    // The theme shown. Null for a moment when the object in `custom` is destroyed (a
    // ThemeLoader's theme, as the application quits): Qt clears this property, and re-runs the
    // bindings that read it, before this binding picks a built-in again. So the properties
    // below read pick() instead, and a component should read them, not `current`.
    readonly property QtObject current: pick()

    function pick() {
        if (custom)
            return custom
        for (var i = 0; i < builtIns.length; ++i) {
            if (builtIns[i].name === name)
                return builtIns[i]
        }
        return light
    }

    readonly property color window: pick().window
    readonly property color surface: pick().surface
    readonly property color text: pick().text
    readonly property color textMuted: pick().textMuted
    readonly property color border: pick().border
    readonly property color accent: pick().accent
    readonly property color accentText: pick().accentText
    readonly property color button: pick().button
    readonly property color buttonText: pick().buttonText
    readonly property color field: pick().field
    readonly property color fieldText: pick().fieldText
    readonly property color focusRing: pick().focusRing
    readonly property color tile: pick().tile
    readonly property color tileHover: pick().tileHover
    readonly property color tilePressed: pick().tilePressed
    readonly property color tileSelected: pick().tileSelected
    readonly property color tileBorder: pick().tileBorder
    readonly property color placeholder: pick().placeholder
    readonly property color progressTrack: pick().progressTrack
    readonly property color progress: pick().progress
    readonly property color error: pick().error
    readonly property color errorSurface: pick().errorSurface
    readonly property int spacing: pick().spacing
    readonly property int spacingSmall: pick().spacingSmall
    readonly property int tilePadding: pick().tilePadding
    readonly property int radius: pick().radius
    readonly property int radiusSmall: pick().radiusSmall
    readonly property int borderWidth: pick().borderWidth
    readonly property int focusWidth: pick().focusWidth
    readonly property int toolBarHeight: pick().toolBarHeight
    readonly property int progressHeight: pick().progressHeight
    readonly property string fontFamily: pick().fontFamily
    readonly property int fontPixelSize: pick().fontPixelSize
    readonly property int smallFontPixelSize: pick().smallFontPixelSize
}
