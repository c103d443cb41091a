import QtQuick 2.15
import QtQuick.Controls 2.15

// One tile: a button showing one row of an ImageGalleryModel. It only reflects the row's roles
// (placeholder and progress while loading, the thumbnail when ready, the reason when it failed);
// fetching and decoding happen in the model, and a retry is a request to it.
Item {
    id: root
    objectName: "imageButton"

    // Roles of the model row: the gallery's cell binds them from its model (and a GridView that
    // reuses the cell for another row refills them).
    required property string url
    required property int status
    required property string source
    required property string errorString
    required property real progress
    // False where a retry cannot help because this client's own rules or build decided the
    // failure (a URL refused before any request, an SVG, a response or image over the limits, a
    // redirect the policy refuses, https without TLS): no Retry is offered.
    required property bool retryable

    // The thumbnail box in logical pixels (the model's thumbnailSize) and its fill mode;
    // the status values are Image.status's, so Image.Ready etc. name them.
    property size thumbnailSize: Qt.size(240, 140)
    property int fillMode: Image.PreserveAspectFit
    property bool selected: false
    property bool current: false
    property bool showFocus: false

    readonly property bool hovered: mouseArea.containsMouse
    readonly property bool pressed: mouseArea.pressed
    readonly property bool ready: status === Image.Ready && content.item !== null
                                  && content.item.thumbnailStatus === Image.Ready
    readonly property string fileName: {
        var path = url.split(/[?#]/)[0]
        var slash = path.lastIndexOf("/")
        var name = slash >= 0 && slash < path.length - 1 ? path.slice(slash + 1) : path
        try {
            return decodeURIComponent(name)
        } catch (malformed) {
            return name
        }
    }
    readonly property string statusText: status === Image.Ready ? qsTr("loaded")
                                       : status === Image.Error ? qsTr("failed: %1").arg(errorString)
                                       : qsTr("loading")

    signal clicked(int modifiers)
    signal doubleClicked()
    signal retryRequested()
    // The thumbnail is on the tile now: a first one, a new one (a reload), or another row's
    // when a view reuses the tile. Said at the Image's own status change, which Qt sends for
    // each picture it finishes loading, also Ready after Ready, where `ready` stays true.
    signal thumbnailShown()

    Accessible.role: Accessible.Button
    Accessible.name: fileName + ", " + statusText
    Accessible.description: url
    Accessible.selectable: true
    Accessible.selected: selected
    // The tile the keys move is the one a screen reader follows.
    Accessible.focusable: true
    Accessible.focused: showFocus
    Accessible.onPressAction: clicked(Qt.NoModifier)


    Rectangle {
        id: face
        objectName: "face"
        anchors.fill: parent
        radius: Theme.radius
        color: root.pressed ? Theme.tilePressed
             : root.selected ? Theme.tileSelected
             : root.hovered ? Theme.tileHover
             : Theme.tile
        border.width: root.showFocus ? Theme.focusWidth : Theme.borderWidth
        border.color: root.showFocus ? Theme.focusRing
                    : root.selected ? Theme.accent
                    : Theme.tileBorder
    }

    // The thumbnail, its placeholder and the error face are made asynchronously, a frame or two
    // after the tile: a new list builds a whole screen of tiles in one go on the GUI thread, and
    // everything made there delays the first replies' hand-over (and the first frame).
    // Started once the tile is complete, and cancelled as it goes (as the gallery's cells do with
    // their tiles): left to the tile's destruction, Qt reported "Object or context destroyed
    // during incubation". Started with the tile instead, it began while the tile itself was
    // still being made, and a tile dropped then (its cell scrolled away or made again) never
    // completed, so never cancelled it: the same warning, now and then in a resize storm.
    Component.onCompleted: content.active = true
    Component.onDestruction: content.active = false
    Loader {
        id: content
        anchors.fill: parent
        asynchronous: true
        active: false
        sourceComponent: Item {
            readonly property int thumbnailStatus: thumbnail.status
            Item {
                id: box
                objectName: "thumbnailBox"
                anchors.centerIn: parent
                width: Math.min(root.thumbnailSize.width, root.width - 2 * Theme.tilePadding)
                height: Math.min(root.thumbnailSize.height, root.height - 2 * Theme.tilePadding)

                Rectangle {
                    id: placeholder
                    objectName: "placeholder"
                    anchors.fill: parent
                    radius: Theme.radiusSmall
                    color: Theme.placeholder
                    visible: root.status !== Image.Error && thumbnail.status !== Image.Ready

                    // A bar, without a "Loading n%" text: laying out a text in every new tile was the
                    // largest single cost of creating one (about 0.2 ms each, 36 at once for a new list).
                    Rectangle {
                        objectName: "progressTrack"
                        anchors { left: parent.left; right: parent.right; bottom: parent.bottom
                                  margins: Theme.spacing }
                        height: Theme.progressHeight
                        radius: height / 2
                        color: Theme.progressTrack

                        Rectangle {
                            objectName: "progressBar"
                            height: parent.height
                            radius: parent.radius
                            width: parent.width * Math.max(0, Math.min(1, root.progress))
                            color: Theme.progress
                        }
                    }
                }

                Image {
                    id: thumbnail
                    objectName: "thumbnail"
                    anchors.centerIn: parent
                    // Never larger than the picture: a small original stays at its own size,
                    // centred, as the decoder keeps it (it never upscales), instead of being
                    // blown up into a blur. Its size in pixels is taken as logical pixels, so it
                    // covers as much of any screen as at a ratio of 1 (a thumbnail made for a
                    // 2x screen has twice the box's pixels, and fills the box). Not
                    // implicitWidth: with a fill mode, Image adjusts that to the size it is
                    // given, a loop. `status` is read too: Image says no sourceSizeChanged when
                    // a new picture has the last one's size, and sourceSize reads 0x0 while it
                    // loads (a new thumbnailSize left tiles empty for good).
                    width: status === Image.Ready ? Math.min(parent.width, sourceSize.width)
                                                  : parent.width
                    height: status === Image.Ready ? Math.min(parent.height, sourceSize.height)
                                                   : parent.height
                    // The source changes whenever the thumbnail does; an empty source (not Ready) clears it.
                    source: root.status === Image.Ready ? root.source : ""
                    // A thumbnail in memory is shown at once, in this turn: its provider only looks
                    // it up. One that must come back from the disk cache is loaded asynchronously
                    // whatever this says: its provider is an asynchronous one.
                    asynchronous: false
                    fillMode: root.fillMode
                    smooth: true
                    // Not for an empty picture: the provider's answer when the thumbnail is no
                    // longer wanted at this size (the row gives the tile another source next).
                    onStatusChanged: if (status === Image.Ready && implicitWidth > 0) root.thumbnailShown()
                }

                // Made only for a failed row (as is the tooltip below, on hover): items a tile does not
                // show would still cost time to create, on the GUI thread, for every tile that scrolls in.
                Loader {
                    id: errorFace
                    // Too small a box for the title, the reason and the button (small
                    // thumbnails): the button alone, as a glyph, or where a retry cannot help a
                    // mark of the same size; the tooltip gives the reason.
                    readonly property bool compact: box.height < 72 || box.width < 96
                    anchors.centerIn: parent
                    width: compact ? parent.width : parent.width - 2 * Theme.spacing
                    active: root.status === Image.Error
                    sourceComponent: Column {
                        objectName: "errorFace"
                        spacing: Theme.spacingSmall

                        Text {
                            visible: !errorFace.compact
                            width: parent.width
                            horizontalAlignment: Text.AlignHCenter
                            text: qsTr("Could not load")
                            color: Theme.error
                            font.family: Theme.fontFamily
                            font.pixelSize: Theme.fontPixelSize
                            font.bold: true
                        }
                        Text {
                            objectName: "errorText"
                            visible: !errorFace.compact
                            width: parent.width
                            horizontalAlignment: Text.AlignHCenter
                            wrapMode: Text.Wrap
                            maximumLineCount: 2
                            elide: Text.ElideRight
                            // Plain: the reason can be a server's own words (an HTTP reason
                            // phrase), and as rich text an <img> in them was fetched and drawn.
                            textFormat: Text.PlainText
                            text: root.errorString
                            color: Theme.text
                            font.family: Theme.fontFamily
                            font.pixelSize: Theme.smallFontPixelSize
                        }
                        Rectangle {
                            // A refused URL's small tile was left blank, as if still loading.
                            objectName: "errorMark"
                            visible: errorFace.compact && !root.retryable
                            anchors.horizontalCenter: parent.horizontalCenter
                            // No larger than the picture's box (16 px thumbnails), like Retry.
                            width: Math.min(retryButton.height, box.width, box.height)
                            height: width
                            radius: height / 2
                            color: Theme.errorSurface
                            border.width: Theme.borderWidth
                            border.color: Theme.error

                            Text {
                                anchors.centerIn: parent
                                text: "!"
                                color: Theme.error
                                font.family: Theme.fontFamily
                                font.pixelSize: Theme.smallFontPixelSize
                                font.bold: true
                            }
                        }
                        Rectangle {
                            id: retryButton
                            objectName: "retryButton"
                            visible: root.retryable
                            anchors.horizontalCenter: parent.horizontalCenter
                            width: Math.min(retryLabel.implicitWidth + 4 * Theme.spacingSmall, box.width)
                            height: Math.min(retryLabel.implicitHeight + 2 * Theme.spacingSmall,
                                             box.height)
                            radius: Theme.radiusSmall
                            color: retryArea.pressed ? Theme.tilePressed
                                 : retryArea.containsMouse ? Theme.tileHover : Theme.errorSurface
                            border.width: Theme.borderWidth
                            border.color: Theme.error

                            Accessible.role: Accessible.Button
                            Accessible.name: qsTr("Retry %1").arg(root.fileName)
                            Accessible.onPressAction: root.retryRequested()

                            Text {
                                id: retryLabel
                                anchors.centerIn: parent
                                text: errorFace.compact ? "\u21bb" : qsTr("Retry")
                                color: Theme.error
                                font.family: Theme.fontFamily
                                font.pixelSize: Theme.smallFontPixelSize
                            }
                            MouseArea {
                                id: retryArea
                                anchors.fill: parent
                                hoverEnabled: true
                                onClicked: root.retryRequested()
                            }
                        }
                    }
                }
            }
        }
    }

    Loader {
        anchors.fill: parent
        active: root.hovered && root.url !== ""
        sourceComponent: Item {
            id: tipAnchor
            // Shown once the item is in the tile's window: a popup asked to show before that
            // stays hidden.
            property bool placed: false
            Component.onCompleted: placed = true

            // A tooltip of the tile's own rather than the attached one, for two reasons: its
            // text (the URL as listed, a server's reason phrase) is shown as plain text, where
            // the default one reads markup, and it takes the theme's colours and font, where
            // the default one takes the style's.
            ToolTip {
                id: tip
                objectName: "tileToolTip"
                visible: tipAnchor.placed
                delay: 600
                // A URL can be a megabyte long: its middle goes, so the reason still shows.
                readonly property string shownUrl: root.url.length <= 300 ? root.url
                    : root.url.slice(0, 200) + "\u2026" + root.url.slice(-80)
                text: root.status === Image.Error ? shownUrl + "\n" + root.errorString : shownUrl
                font.family: Theme.fontFamily
                font.pixelSize: Theme.smallFontPixelSize
                contentItem: Text {
                    text: tip.text
                    textFormat: Text.PlainText
                    wrapMode: Text.WrapAnywhere
                    font: tip.font
                    color: Theme.text
                }
                background: Rectangle {
                    color: Theme.surface
                    border.width: Theme.borderWidth
                    border.color: Theme.border
                    radius: Theme.radiusSmall
                }
            }
        }
    }

    MouseArea {
        id: mouseArea
        objectName: "mouseArea"
        anchors.fill: parent
        // Below the retry button in z, so a click on Retry does not also select the tile.
        z: -1
        hoverEnabled: true
        acceptedButtons: Qt.LeftButton
        onClicked: function(mouse) { root.clicked(mouse.modifiers) }
        onDoubleClicked: root.doubleClicked()
    }
}
