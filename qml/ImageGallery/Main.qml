import QtQuick 2.15
import QtQuick.Controls 2.15
import QtQuick.Layouts 1.15
import QtQuick.Dialogs 1.3
import QtQml 2.15
import ImageGallery 1.0

// The `imagegallery` app window: toolbar, gallery, status line. The app (app.py) configures the
// model and hands over URL text and list files through the request signals below, because
// parsing lists and reading files is Python's job, not QML's.
ApplicationWindow {
    id: root
    objectName: "mainWindow"

    // Set by the app.
    property var themeLoader: null  // a ThemeLoader for --theme PATH, or null
    property string listError: ""  // why the last list opened from the toolbar could not be read
    property string statusMessage: ""  // anything else the user must hear of, e.g. an image not opened
    property bool fileThemeActive: !!themeLoader
    property bool pickMode: false
    property string themeName: ""  // a built-in theme to start with
    // For the app and tests: `var`, because a QML alias to a Python object reads back as a voidptr.
    readonly property var galleryModel: imageModel

    signal addUrlsRequested(string text)  // pasted text: URLs or paths, one per line or space
    signal openListRequested(string path)  // a file of URLs, one a line
    signal picked(var urls)
    signal cancelled()
    signal openImageRequested(int index, string url)  // activated outside --pick: show it whole

    width: 1100
    height: 760
    visible: true
    title: pickMode ? qsTr("Choose images") : qsTr("ImageGallery")
    color: Theme.window

    palette.window: Theme.window
    palette.windowText: Theme.text
    palette.base: Theme.field
    palette.alternateBase: Theme.surface
    palette.text: Theme.fieldText
    palette.button: Theme.button
    palette.buttonText: Theme.buttonText
    palette.brightText: Theme.accentText
    palette.highlight: Theme.accent
    palette.highlightedText: Theme.accentText
    palette.light: Theme.tileHover
    palette.midlight: Theme.tileHover
    palette.mid: Theme.border
    palette.dark: Theme.border
    palette.shadow: Theme.border
    palette.toolTipBase: Theme.surface
    palette.toolTipText: Theme.text
    font.family: Theme.fontFamily
    font.pixelSize: Theme.fontPixelSize

    background: Rectangle {
        color: Theme.window
    }

    onThemeNameChanged: if (themeName !== "") Theme.name = themeName
    Component.onCompleted: if (themeName !== "") Theme.name = themeName

    ImageGalleryModel {
        id: imageModel
        objectName: "galleryModel"
    }

    Binding {
        target: Theme
        property: "custom"
        value: root.fileThemeActive && root.themeLoader ? root.themeLoader.theme : null
        restoreMode: Binding.RestoreNone
    }

    // What a pick returns: the selected URLs but those that failed to load (a 404, a refused
    // javascript: entry), which a script could do nothing with. Read again as rows fail.
    readonly property var choosableUrls: {
        imageModel.failedCount  // a row that fails later leaves the choice
        return gallery.selectedUrls.filter(function(url) { return !imageModel.failed(url) })
    }

    function pickSelection(fallbackUrl) {
        var urls = gallery.selectedUrls.length > 0 ? choosableUrls
                 : fallbackUrl && !imageModel.failed(fallbackUrl) ? [fallbackUrl] : []
        statusMessage = ""
        _pickOnceSettled(urls)
    }

    // A pick made while some of its images are still loading, kept until they have loaded or
    // failed: a script then gets only URLs that loaded, never one that fails a moment later.
    // A new selection drops it (so does a list that drops a chosen URL, with the selection);
    // Esc ends the picker.
    property var awaitedPick: []
    readonly property int awaitedStillLoading: {
        imageModel.pendingCount  // read again as rows settle
        return awaitedPick.filter(function(url) { return imageModel.pending(url) }).length
    }

    function _pickOnceSettled(urls) {
        if (urls.some(function(url) { return imageModel.pending(url) })) {
            awaitedPick = urls
            return
        }
        var waited = awaitedPick.length > 0
        awaitedPick = []
        var loaded = urls.filter(function(url) { return imageModel.loaded(url) })
        if (loaded.length > 0)
            picked(loaded)
        else if (waited)  // else the window would just go quiet, the choice gone
            statusMessage = qsTr("None of the chosen images loaded: nothing was chosen")
    }

    Connections {
        target: imageModel
        enabled: root.awaitedPick.length > 0
        function onCountsChanged() { root._pickOnceSettled(root.awaitedPick) }
    }

    Connections {
        target: gallery
        function onSelectedUrlsChanged() { root.awaitedPick = [] }
    }

    Shortcut {
        sequence: "Esc"
        enabled: root.pickMode
        onActivated: root.cancelled()
    }

    header: ToolBar {
        id: toolBar
        objectName: "toolBar"
        height: Theme.toolBarHeight
        background: Rectangle {
            color: Theme.surface
            Rectangle {
                anchors { left: parent.left; right: parent.right; bottom: parent.bottom }
                height: Theme.borderWidth
                color: Theme.border
            }
        }

        RowLayout {
            anchors.fill: parent
            anchors.leftMargin: Theme.spacing
            anchors.rightMargin: Theme.spacing
            spacing: Theme.spacing

            TextField {
                id: urlField
                objectName: "urlField"
                Layout.fillWidth: true
                placeholderText: qsTr("Paste image URLs or paths and press Enter")
                placeholderTextColor: Theme.textMuted
                selectByMouse: true
                onAccepted: {
                    if (text.trim() !== "") {
                        root.addUrlsRequested(text)
                        text = ""
                    }
                }
            }
            Button {
                objectName: "openListButton"
                focusPolicy: Qt.TabFocus  // a click leaves the keys with the gallery
                text: qsTr("Open list…")
                onClicked: fileDialogLoader.active = true
            }
            Button {
                objectName: "reloadButton"
                focusPolicy: Qt.TabFocus  // a click leaves the keys with the gallery
                text: qsTr("Reload")
                enabled: imageModel.count > 0
                onClicked: imageModel.reload()
            }
            Button {
                objectName: "retryFailedButton"
                focusPolicy: Qt.TabFocus  // a click leaves the keys with the gallery
                text: qsTr("Retry failed")
                // Not for failures a retry brings back the same (an SVG, a bomb): their tiles
                // offer no Retry either.
                enabled: imageModel.retryableFailedCount > 0
                onClicked: imageModel.retryFailed()
            }
            ComboBox {
                id: themeBox
                objectName: "themeSwitcher"
                Layout.preferredWidth: 160
                // Parallel to `model`: the Theme.name each entry selects ("file": the loader's).
                readonly property var keys: root.themeLoader ? Theme.names.concat(["file"]) : Theme.names
                // The file's theme by its own name ("sunset"), once loaded. A name it only
                // inherits, ThemeData's "custom" or that of the built-in it extends, names none
                // (beside "Dark", a second "dark" would say nothing of which is which).
                readonly property string fileLabel: {
                    var theme = root.themeLoader ? root.themeLoader.theme : null
                    var name = theme ? theme.name : ""
                    return name !== "" && name !== "custom" && Theme.names.indexOf(name) < 0
                           ? name : qsTr("Theme file")
                }
                model: {
                    var labelOf = {"light": qsTr("Light"), "dark": qsTr("Dark"),
                                   "high-contrast": qsTr("High contrast")}
                    var labels = Theme.names.map(function (key) { return labelOf[key] || key })
                    if (root.themeLoader)
                        labels.push(fileLabel)
                    return labels
                }
                // Set, not bound: ComboBox drops a currentIndex binding when its model is assigned.
                function sync() {
                    currentIndex = root.fileThemeActive ? keys.indexOf("file")
                                                        : Math.max(0, keys.indexOf(Theme.name))
                }
                Component.onCompleted: sync()
                onModelChanged: sync()
                Connections {
                    target: Theme
                    function onNameChanged() { themeBox.sync() }
                }
                Connections {
                    target: root
                    function onFileThemeActiveChanged() { themeBox.sync() }
                }
                // Every part is drawn on a background with the text colour the theme means for
                // it (docs/themes.md, "Colours that go together"): the box on button, its list
                // on field, and the open box and the highlighted entry on accent. The Default
                // style mixed roles from different pairs (a highlighted entry's text over
                // palette.light, the list's text over palette.window, an open box on
                // palette.mid), and a theme, built-in or partial, that kept one colour of such
                // a mix readable made the other unreadable.
                //
                // Open, the box shows the accent, as the highlighted entry below it does.
                background: Rectangle {
                    implicitWidth: 140
                    implicitHeight: 40
                    color: themeBox.down ? Theme.accent : Theme.button
                    border.color: Theme.focusRing
                    border.width: themeBox.visualFocus ? Theme.focusWidth : 0
                }
                // The style draws the box's text in palette.buttonText and its arrow in
                // palette.dark (the window's dark is its border colour: the arrow vanished).
                palette.buttonText: down ? Theme.accentText : Theme.buttonText
                palette.dark: down ? Theme.accentText : Theme.buttonText
                // A Qt 5.15 control whose own palette role changes stops taking the window's
                // other roles: the switcher kept the first theme's colours. So the window's
                // other roles are bound here too (the style draws the list's border in mid).
                palette.button: Theme.button
                palette.text: Theme.fieldText
                palette.base: Theme.field
                palette.window: Theme.window
                palette.mid: Theme.border
                palette.highlight: Theme.accent
                palette.highlightedText: Theme.accentText
                palette.light: Theme.tileHover
                palette.midlight: Theme.tileHover
                popup.objectName: "themeSwitcherList"
                popup.background: Rectangle {
                    color: Theme.field
                }
                // The entries read Theme, not the palette: the style's entry sets palette roles
                // of its own and so froze the others (its highlight kept the first theme's
                // colour after a live switch), and the same went for its font, whose weight is
                // its own.
                delegate: ItemDelegate {
                    id: entry
                    objectName: "themeSwitcherEntry"
                    required property int index
                    required property string modelData
                    width: ListView.view.width
                    text: modelData
                    highlighted: themeBox.highlightedIndex === index
                    hoverEnabled: themeBox.hoverEnabled
                    font.family: Theme.fontFamily
                    font.pixelSize: Theme.fontPixelSize
                    font.weight: themeBox.currentIndex === index ? Font.DemiBold : Font.Normal
                    contentItem: Text {
                        text: entry.text
                        font: entry.font
                        color: entry.highlighted || entry.down ? Theme.accentText : Theme.fieldText
                        elide: Text.ElideRight
                        horizontalAlignment: entry.mirrored ? Text.AlignRight : Text.AlignLeft
                        verticalAlignment: Text.AlignVCenter
                    }
                    background: Rectangle {
                        implicitWidth: 100
                        implicitHeight: 40
                        visible: entry.highlighted || entry.down
                        color: Theme.accent
                    }
                }
                Accessible.name: qsTr("Theme")
                onActivated: function(index) {
                    var key = keys[index]
                    root.fileThemeActive = key === "file"
                    if (key !== "file")
                        Theme.name = key
                }
                // The keys go back to the gallery once a list opened with the mouse closes:
                // left here, the arrow keys went on changing the theme. One opened from the
                // keyboard leaves them here, in their place in the Tab order. (How the box got
                // its focus does not tell: a Tab user may use the mouse next.)
                property bool openedByMouse: false
                TapHandler {
                    acceptedDevices: PointerDevice.Mouse | PointerDevice.TouchScreen
                    onPressedChanged: if (pressed) themeBox.openedByMouse = true
                }
                // A key while the list is shut: a press that opened nothing (released off the
                // box) must not make the next list, opened from the keyboard, give the keys
                // away. Not accepted, so the box still gets the key.
                Keys.onPressed: function(event) {
                    if (!popup.visible)
                        openedByMouse = false
                    event.accepted = false
                }
                Connections {
                    target: themeBox.popup
                    function onClosed() {
                        if (themeBox.openedByMouse)
                            gallery.forceActiveFocus()
                        themeBox.openedByMouse = false
                    }
                }
            }
            Button {
                objectName: "cancelButton"
                focusPolicy: Qt.TabFocus  // a click leaves the keys with the gallery
                visible: root.pickMode
                text: qsTr("Cancel")
                onClicked: root.cancelled()
            }
            Button {
                objectName: "chooseButton"
                focusPolicy: Qt.TabFocus  // a click leaves the keys with the gallery
                visible: root.pickMode
                enabled: root.choosableUrls.length > 0
                highlighted: true
                // The Default style fills a highlighted button with palette.dark and writes on
                // it in palette.brightText: the window's dark is its border colour, and white on
                // light grey (1.4:1) or navy on slate (1.6:1) could hardly be read. The accent
                // and its text instead, as on a selected tile; every other role bound too (see
                // the theme switcher above), and faded while there is nothing to choose.
                palette.dark: Theme.accent
                palette.brightText: Theme.accentText
                palette.button: Theme.button
                palette.buttonText: Theme.buttonText
                palette.mid: Theme.border
                palette.highlight: Theme.accent
                palette.window: Theme.window
                palette.windowText: Theme.text
                opacity: enabled ? 1 : 0.45
                text: root.choosableUrls.length > 1 ? qsTr("Choose %1").arg(root.choosableUrls.length)
                                                    : qsTr("Choose")
                onClicked: root.pickSelection("")
            }
        }
    }

    ImageGallery {
        id: gallery
        objectName: "gallery"
        anchors.fill: parent
        anchors.margins: Theme.spacing
        model: imageModel
        selectionMode: root.pickMode ? "multi" : "single"
        Component.onCompleted: forceActiveFocus()
        onImageActivated: function(index, url) {
            if (root.pickMode)
                root.pickSelection(url)
            else
                root.openImageRequested(index, url)
        }
    }

    footer: Rectangle {
        objectName: "statusBar"
        height: statusRow.implicitHeight + 2 * Theme.spacing
        color: Theme.surface

        Rectangle {
            anchors { left: parent.left; right: parent.right; top: parent.top }
            height: Theme.borderWidth
            color: Theme.border
        }

        RowLayout {
            id: statusRow
            anchors.fill: parent
            anchors.margins: Theme.spacing
            spacing: Theme.spacing

            Text {
                id: statusText
                objectName: "statusText"
                text: root.awaitedPick.length === 0
                      ? qsTr("%1 of %2 loaded, %3 failed").arg(imageModel.loadedCount)
                        .arg(imageModel.count).arg(imageModel.failedCount)
                      : root.awaitedStillLoading === 1
                      ? qsTr("Waiting for the chosen image to load (Esc closes the picker)")
                      : qsTr("Waiting for %1 chosen images to load (Esc closes the picker)")
                        .arg(root.awaitedStillLoading)
                color: Theme.text
                font.family: Theme.fontFamily
                font.pixelSize: Theme.fontPixelSize
            }
            Rectangle {
                objectName: "overallProgress"
                Layout.preferredWidth: 160
                Layout.preferredHeight: Theme.progressHeight
                radius: height / 2
                color: Theme.progressTrack
                visible: imageModel.busy

                Rectangle {
                    height: parent.height
                    radius: parent.radius
                    width: parent.width * imageModel.progress
                    color: Theme.progress
                }
            }
            Text {
                objectName: "listError"
                visible: root.listError !== ""
                elide: Text.ElideLeft
                Layout.maximumWidth: statusRow.width / 3
                textFormat: Text.PlainText  // names files, and quotes what they held
                text: root.listError
                color: Theme.error
                font.family: Theme.fontFamily
                font.pixelSize: Theme.smallFontPixelSize
            }
            Text {
                objectName: "statusMessage"
                visible: root.statusMessage !== ""
                elide: Text.ElideMiddle  // keeps both ends: what was not opened, and why
                Layout.maximumWidth: statusRow.width / 3
                textFormat: Text.PlainText  // quotes a URL
                text: root.statusMessage
                color: Theme.error
                font.family: Theme.fontFamily
                font.pixelSize: Theme.smallFontPixelSize
            }
            Text {
                objectName: "themeError"
                Layout.fillWidth: true
                horizontalAlignment: Text.AlignRight
                elide: Text.ElideLeft
                textFormat: Text.PlainText
                // Only while the file's theme is shown: beside a built-in theme it described
                // nothing on screen. Back on the file's theme, it is true again until a good save.
                text: root.fileThemeActive && root.themeLoader && root.themeLoader.errorString !== ""
                      ? qsTr("Theme not reloaded: %1").arg(root.themeLoader.errorString) : ""
                color: Theme.error
                font.family: Theme.fontFamily
                font.pixelSize: Theme.smallFontPixelSize
            }
        }
    }

    Loader {
        id: fileDialogLoader
        active: false
        sourceComponent: FileDialog {
            title: qsTr("Open a list of image URLs")
            nameFilters: [qsTr("URL lists (*.txt *.lst)"), qsTr("All files (*)")]
            Component.onCompleted: open()
            onAccepted: {
                root.openListRequested(fileUrl.toString())
                fileDialogLoader.active = false
            }
            onRejected: fileDialogLoader.active = false
        }
    }
}
