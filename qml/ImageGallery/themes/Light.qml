import QtQuick 2.15

// Light is ThemeData's own defaults; it is its own file so a user theme can say `LightTheme { }`.
ThemeData {
    name: "light"
}
