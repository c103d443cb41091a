// A small QML app that uses the ImageGallery module without any Python of its own.
// Run it with:   imagegallery --qml examples/PhotoPicker.qml
// or from a Python host that calls imagegallery.install(engine) (see host.py).
import QtQuick 2.15
import QtQuick.Controls 2.15
import QtQuick.Layouts 1.15
import ImageGallery 1.0

ApplicationWindow {
    id: root
    objectName: "photoPicker"
    width: 820
    height: 560
    visible: true
    title: qsTr("Photo picker")
    color: Theme.window
    // The toolbar's controls follow the theme through the window's palette (the Default style
    // draws a checked button in `dark` with `brightText`).
    palette.window: Theme.window
    palette.windowText: Theme.text
    palette.button: Theme.button
    palette.buttonText: Theme.buttonText
    palette.dark: Theme.accent
    palette.brightText: Theme.accentText

    // Two albums; switching replaces the model's `urls`, and rows that stay keep their images.
    readonly property var albums: ({
        "Qt logos": [
            "https://doc.qt.io/qt-5/images/qt-logo.png",
            "https://www.qt.io/hubfs/Qt_logo_neon_2022.png",
        ],
        "Test cards": [
            "https://upload.wikimedia.org/wikipedia/commons/c/c4/PM5544_with_non-PAL_signals.png",
            "https://upload.wikimedia.org/wikipedia/commons/thumb/6/66/SMPTE_Color_Bars.svg/640px-SMPTE_Color_Bars.svg.png",
        ]
    })
    property string album: "Qt logos"
    property string lastClicked: ""

    ImageGalleryModel {
        id: photos
        urls: root.albums[root.album]
        thumbnailSize: Qt.size(180, 120)
        fillMode: ImageGalleryModel.PreserveAspectCrop
    }

    header: ToolBar {
        // Sized by its row (a single child without anchors): filling a fixed-height bar left
        // the buttons sticking out of it.
        RowLayout {
            width: parent.width
            Repeater {
                model: Object.keys(root.albums)
                Button {
                    required property string modelData
                    text: modelData
                    checkable: true
                    checked: root.album === modelData
                    onClicked: root.album = modelData
                }
            }
            Item { Layout.fillWidth: true }
            Button {
                text: qsTr("Dark")
                checkable: true
                onToggled: Theme.name = checked ? "dark" : "light"
            }
        }
    }

    ImageGallery {
        id: gallery
        anchors.fill: parent
        anchors.margins: Theme.spacing
        model: photos
        selectionMode: "multi"
        onImageClicked: function(index, url) { root.lastClicked = url }
        onImageActivated: function(index, url) { Qt.openUrlExternally(url) }
    }

    footer: Label {
        // An explicit width: the one ApplicationWindow gives its footer does not make a long
        // text elide.
        width: parent ? parent.width : 0
        padding: Theme.spacing
        color: Theme.text
        elide: Text.ElideMiddle
        textFormat: Text.PlainText  // a URL is whatever the list held, markup included
        text: qsTr("%1 of %2 loaded, %3 selected").arg(photos.loadedCount).arg(photos.count)
              .arg(gallery.selectedUrls.length)
              + (root.lastClicked ? qsTr(" · last clicked: %1").arg(root.lastClicked) : "")
    }
}
