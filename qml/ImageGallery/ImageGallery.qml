import QtQuick 2.15
import QtQuick.Window 2.15
import QtQml 2.15
import ImageGallery 1.0

// A grid of image buttons over an ImageGalleryModel. The view reports which rows are on screen
// (setVisibleRangeOf) so the loader fetches those first, and tells the model the screen's pixel
// ratio so thumbnails are made in device pixels; everything else is presentation.
GridView {
    id: root
    objectName: "imageGallery"

    // A convenience for QML apps: with no `model` given, setting `urls` creates an
    // ImageGalleryModel for them; with a model given, `urls` is passed on to it. Left unset
    // (undefined), a given model's own list is left alone.
    property var urls
    // "none", "single" (one URL at a time: the tile clicked, or moved to with the keys) or
    // "multi" (clicks and Space toggle).
    property string selectionMode: "single"
    property var selectedUrls: []

    signal imageClicked(int index, string url)
    signal imageActivated(int index, string url)
    // A tile began to show its row's thumbnail: the moment the user can see it, which the
    // model's Ready (the thumbnail is made) precedes by the provider's answer and, for a new
    // screen, the tile's own making. Emitted again when a reused tile shows another row.
    signal thumbnailShown(int index, string url)

    // The ImageGalleryModel shown: `model` itself, or the model under `model` when that is a
    // proxy of one (a QSortFilterProxyModel, say). Row numbers of this view's API (signals,
    // urlAt, currentIndex) are the view's own, the proxy's; the view maps them for the model.
    readonly property var galleryModel: _galleryModelOf(model)
    readonly property size thumbnailSize: galleryModel ? galleryModel.thumbnailSize : _lastThumbnailSize
    readonly property int _fillMode: galleryModel ? galleryModel.fillMode : _lastFillMode
    // The size and fill mode of the last model shown, kept when it goes. A model destroyed
    // while shown clears galleryModel from inside its destructor, and a cell size or a tile's
    // fill mode that changed there made the GridView refill from the half-destroyed model: a
    // segfault.
    property size _lastThumbnailSize: Qt.size(240, 140)
    property int _lastFillMode: Image.PreserveAspectFit
    onThumbnailSizeChanged: _lastThumbnailSize = thumbnailSize
    on_FillModeChanged: _lastFillMode = _fillMode
    // The columns the thumbnails fit in (the default cell width), and the columns the grid
    // really has: a user may set cellWidth.
    readonly property int _fitColumns: Math.max(1, Math.floor(width / (thumbnailSize.width + 2 * Theme.tilePadding + Theme.spacing)))
    readonly property int columns: cellWidth > 0 ? Math.max(1, Math.floor(width / cellWidth)) : 1

    property bool _completed: false
    property var _ownModel: null  // the model `urls` made when none was given
    onSelectionModeChanged: {
        if (selectionMode !== "none" && selectionMode !== "single" && selectionMode !== "multi")
            console.warn("ImageGallery: selectionMode is \"none\", \"single\" or \"multi\", not \""
                         + selectionMode + "\": nothing will be selected")
        if (selectionMode === "none")
            selectedUrls = []
        else if (selectionMode === "single" && selectedUrls.length > 1)
            selectedUrls = [selectedUrls[selectedUrls.length - 1]]  // the latest choice stays
    }
    // url -> true, rebuilt when selectedUrls changes, so tiles look themselves up in O(1).
    readonly property var _selectedSet: {
        var set = Object.create(null)
        for (var i = 0; i < selectedUrls.length; ++i)
            set[selectedUrls[i]] = true
        return set
    }

    // Cells share the width evenly, so the grid fills the window as it resizes; the tile inside
    // keeps the thumbnail at its own size, centred, instead of upscaling it.
    cellWidth: width > 0 ? Math.floor(width / _fitColumns) : thumbnailSize.width + 2 * Theme.tilePadding + Theme.spacing
    cellHeight: thumbnailSize.height + 2 * Theme.tilePadding + Theme.spacing
    reuseItems: true
    clip: true
    focus: true
    activeFocusOnTab: true
    Accessible.role: Accessible.List
    Accessible.name: qsTr("Images")
    boundsBehavior: Flickable.StopAtBounds
    // The model decides what to load; a larger buffer would only hold more idle tiles. Two rows
    // beyond the screen are built ahead so that a scroll finds its next tiles made, but not in
    // the view's first frame with tiles: Qt builds the buffer's cells in the same turn as the
    // visible ones (36 instead of 28 in a 4x6 window), and their tiles are then made in the
    // same first frames as the screen's, while the first replies wait. The buffer follows a
    // frame later.
    cacheBuffer: _firstTilesShown ? cellHeight * 2 : 0
    property bool _firstTilesShown: false
    Connections {
        target: root._firstTilesShown ? null : root.Window.window
        function onFrameSwapped() {
            if (root.count > 0)
                root._firstTilesShown = true
        }
    }

    // A cell per row, made at once: a plain rectangle holding a Loader. Its tile (an
    // ImageButton) is made asynchronously, in the idle time between frames. A new list makes a
    // screen of cells in one turn on the GUI thread, and every reply that finishes meanwhile
    // waits: made there, a tile cost about 0.4 ms (its five roles are read through Python),
    // 27 ms for a 7x7 window. The cell reads no role (only a model's first cell reads them
    // once, _modelHasTileRoles); the tile reads them from `model` once it is made.
    delegate: Rectangle {
        id: cell
        objectName: "galleryCell"
        required property int index
        required property var model
        readonly property bool _tileMade: tileLoader.status === Loader.Ready

        // The tile's colour until the tile is made, a frame or two later: without it a new list,
        // or a jump to rows whose cells are new, showed bare window there for those frames. A
        // plain rectangle: rounded and bordered like the tile's face, 49 of them cost the
        // software renderer 2-3 ms more in a new list's first frame.
        color: _tileMade ? "transparent" : Theme.tile

        width: root.cellWidth - Theme.spacing
        height: root.cellHeight - Theme.spacing
        // Tiles read an ImageGalleryModel's roles (directly or through a proxy); a model
        // without them gets empty cells and one warning, not five TypeErrors a tile.
        Component.onCompleted: {
            if (root._modelHasTileRoles(cell.model))
                root._queueTile(tileLoader)
            else
                Qt.callLater(root._warnNoTileRoles)  // after onModelChanged, once a turn
        }
        Component.onDestruction: {
            // Cancels a tile still being made: left to the cell's destruction, Qt reported
            // "Object or context destroyed during incubation" for each.
            tileLoader.active = false
            root._forgetTile(tileLoader)
        }
        // A cell put in the pool (reuseItems) may be destroyed from there later, its tile still
        // being made: cancelled now, and started again if the cell is reused.
        GridView.onPooled: {
            if (tileLoader.status !== Loader.Ready) {
                tileLoader.active = false
                root._forgetTile(tileLoader)
            }
        }
        GridView.onReused: {
            if (!tileLoader.active && root._modelHasTileRoles(cell.model))
                root._queueTile(tileLoader)
        }

        Loader {
            id: tileLoader
            readonly property int index: cell.index
            anchors.fill: parent
            asynchronous: true
            active: false  // started by _startTiles, in the order the screen should fill
            sourceComponent: ImageButton {
                readonly property int index: cell.index

                // A row can go while its tile is still being made (the view given another
                // model, or null, mid-load): its roles then read undefined, and each would be a
                // QML warning ("Unable to assign [undefined]"), once in CI. The tile goes with
                // its cell; until then it shows an empty row.
                // Each role read once (a read is a call into Python), through _orIfGone.
                url: root._orIfGone(cell.model.url, "")
                status: root._orIfGone(cell.model.status, Image.Null)
                source: root._orIfGone(cell.model.source, "")
                errorString: root._orIfGone(cell.model.errorString, "")
                progress: root._orIfGone(cell.model.progress, 0)
                // Read only for a failed row: one call into Python fewer for every other tile.
                retryable: status !== Image.Error || root._orIfGone(cell.model.retryable, true)
                thumbnailSize: root.thumbnailSize
                fillMode: root._fillMode
                selected: root._selectedSet[url] === true
                current: root.currentIndex === index
                showFocus: current && root.activeFocus

                onClicked: root._tileClicked(index, url)
                onDoubleClicked: root._tileDoubleClicked(index, url)
                onRetryRequested: root._retry(index)
                // Read from the row, not the tile: a reused tile can show its new row's picture
                // while its own `url` is still the old row's.
                onThumbnailShown: root.thumbnailShown(cell.index, cell.model.url)
            }
        }
    }

    Component {
        id: ownModelComponent
        ImageGalleryModel {}
    }

    Binding {
        target: root.galleryModel
        property: "devicePixelRatio"
        value: Screen.devicePixelRatio
        when: root.galleryModel !== null && Screen.devicePixelRatio > 0
        restoreMode: Binding.RestoreNone
    }

    onUrlsChanged: _applyUrls()
    Connections {
        // A proxy that sorts or filters again moves other rows of the model onto the screen,
        // also when its count stays the same (a filter swapping 150 rows for 150 others).
        target: root.galleryModel && root.model !== root.galleryModel ? root.model : null
        function onLayoutChanged() { root._scheduleVisibleRange() }
        function onModelReset() { root._scheduleVisibleRange() }
        function onRowsInserted() { root._scheduleVisibleRange() }
        function onRowsRemoved() { root._scheduleVisibleRange() }
        function onRowsMoved() { root._scheduleVisibleRange() }
    }
    Connections {
        target: root.galleryModel
        function onUrlsChanged() { root._dropGoneSelections() }
        // Through a proxy the view lists its own prefetch margin, prefetchRows wide.
        function onSettingsChanged() { root._scheduleVisibleRange() }
    }
    onModelChanged: {
        _warnedAboutModel = false
        if (_ownModel && model !== _ownModel) {
            // The host gave a model of its own: the one `urls` made would go on loading.
            _ownModel.destroy()
            _ownModel = null
        }
        _applyUrls()
    }
    Component.onCompleted: {
        _completed = true
        _applyUrls()
        _scheduleVisibleRange()
    }

    onContentYChanged: _scheduleVisibleRange()
    onVisibleChanged: _scheduleVisibleRange()
    onHeightChanged: _scheduleVisibleRange()
    onWidthChanged: _scheduleVisibleRange()
    onCountChanged: _scheduleVisibleRange()
    onCellHeightChanged: _scheduleVisibleRange()
    onCellWidthChanged: _scheduleVisibleRange()
    onColumnsChanged: _scheduleVisibleRange()  // a narrower thumbnail: more rows of the list on screen
    onGalleryModelChanged: {
        _tileRolesFoundIn = null  // a proxy given another source model is the same `model`
        _scheduleVisibleRange()
        if (galleryModel) {
            _applyUrls()  // a proxy given its source model later gets `urls` too
            // Another model's URLs are not this one's: a picker must not return what it no
            // longer shows.
            _dropGoneSelections()
        } else {
            selectedUrls = []
        }
    }

    Keys.onPressed: function(event) {
        if (count === 0)
            return
        var page = columns * Math.max(1, Math.floor(height / cellHeight))
        var target = -1
        var moves = [Qt.Key_Left, Qt.Key_Right, Qt.Key_Up, Qt.Key_Down, Qt.Key_PageUp, Qt.Key_PageDown]
        if (currentIndex < 0 && moves.indexOf(event.key) >= 0) {
            // No tile is current (a host set currentIndex to -1): any move starts at the first
            // one on screen, not at the top of the list.
            event.accepted = true
            var lineStart = effectiveLayoutDirection === Qt.RightToLeft ? contentX + width - 1
                                                                       : contentX + 1
            _moveTo(Math.max(0, indexAt(lineStart, contentY + 1)))
            return
        }
        switch (event.key) {
        case Qt.Key_Left: target = currentIndex + (effectiveLayoutDirection === Qt.RightToLeft ? 1 : -1); break
        case Qt.Key_Right: target = currentIndex + (effectiveLayoutDirection === Qt.RightToLeft ? -1 : 1); break
        case Qt.Key_Up: target = currentIndex - columns; break
        case Qt.Key_Down: target = currentIndex + columns; break
        case Qt.Key_Home: target = 0; break
        case Qt.Key_End: target = count - 1; break
        case Qt.Key_PageUp: target = Math.max(0, currentIndex - page); break
        case Qt.Key_PageDown: target = Math.min(count - 1, currentIndex + page); break
        case Qt.Key_Return:
        case Qt.Key_Enter:
            _activateCurrent()
            event.accepted = true
            return
        case Qt.Key_Space:
            if (selectionMode === "multi")
                toggleSelected(currentIndex)
            else
                _activateCurrent()
            event.accepted = true
            return
        case Qt.Key_R:  // the failed tile's Retry button, from the keyboard
            if (event.modifiers !== Qt.NoModifier)
                return  // Ctrl+R and the like are the host's shortcuts
            // Taken only where it retries: elsewhere R is left to the host's own shortcuts.
            if (galleryModel && currentIndex >= 0) {
                var failed = galleryModel.get(_sourceRow(currentIndex))
                if (failed.status === Image.Error && failed.retryable) {
                    _retry(currentIndex)
                    event.accepted = true
                }
            }
            return
        default:
            return
        }
        event.accepted = true
        if (target < 0 || target >= count)
            return  // at an edge: stay, like a list does
        _moveTo(target)
    }

    function _moveTo(index) {
        currentIndex = index
        positionViewAtIndex(index, GridView.Contain)
        if (selectionMode === "single")
            selectedUrls = [urlAt(index)]
    }

    // The URL of row `index`, or "" outside the list.
    function urlAt(index) {
        if (index < 0 || index >= count || !galleryModel)
            return ""
        var row = _sourceRow(index)
        return row < 0 ? "" : galleryModel.get(row).url
    }

    // The gallery model's row for the view's row `index`: the same number, or mapped through
    // the proxies between them; -1 if a proxy has no such row.
    function _sourceRow(index) {
        if (model === galleryModel)
            return index
        var modelIndex = model.index(index, 0)
        for (var proxy = model; proxy && proxy !== galleryModel; proxy = proxy.sourceModel)
            modelIndex = proxy.mapToSource(modelIndex)
        return modelIndex.valid ? modelIndex.row : -1
    }

    function _retry(index) {
        var row = _sourceRow(index)
        if (galleryModel && row >= 0)
            galleryModel.retry(row)
    }

    function isSelected(index) {
        return _selectedSet[urlAt(index)] === true
    }

    function toggleSelected(index) {
        var url = urlAt(index)
        if (selectionMode === "none" || url === "")
            return
        if (selectionMode === "single") {
            selectedUrls = _selectedSet[url] ? [] : [url]
            return
        }
        // Every copy goes: a host may have set a list that names a URL twice.
        selectedUrls = _selectedSet[url] ? selectedUrls.filter(function(each) { return each !== url })
                                         : selectedUrls.concat([url])
    }

    function clearSelection() {
        selectedUrls = []
    }

    function selectAll() {
        // A copy (the property itself reads as a live view of the model's list, and a later
        // list would look selected), each URL once: a URL listed twice is one selection, which
        // one click on either tile must clear. A set, not indexOf: 5,000 URLs.
        if (selectionMode !== "multi" || !galleryModel)
            return
        var seen = Object.create(null)
        var unique = []
        var all = galleryModel.urls.slice()  // read once: indexing the property read it whole each time
        if (model !== galleryModel) {  // what the proxy shows: a filter's hidden rows stay out
            all = []
            for (var row = 0; row < count; ++row)
                all.push(urlAt(row))
        }
        for (var i = 0; i < all.length; ++i) {
            if (!seen[all[i]]) {
                seen[all[i]] = true
                unique.push(all[i])
            }
        }
        selectedUrls = unique
    }

    function _tileClicked(index, url) {
        forceActiveFocus()
        currentIndex = index
        if (selectionMode === "single")
            selectedUrls = [url]
        else if (selectionMode === "multi")
            toggleSelected(index)
        imageClicked(index, url)
    }

    function _tileDoubleClicked(index, url) {
        // The double-click's first click toggled the tile; a double-click means "this one", so in
        // multi mode it ends selected whichever way that click went (a picker returns it).
        if (selectionMode === "multi" && !_selectedSet[url])
            selectedUrls = selectedUrls.concat([url])
        imageActivated(index, url)
    }

    // Selected URLs whose rows went away (a new list, a removal) stop counting as selected.
    function _dropGoneSelections() {
        if (!galleryModel || selectedUrls.length === 0)
            return
        var present = {}
        var urls = galleryModel.urls.slice()  // read once: each index of the view reads it all
        for (var i = 0; i < urls.length; ++i)
            present[urls[i]] = true
        var kept = selectedUrls.filter(function(url) { return present[url] === true })
        if (kept.length !== selectedUrls.length)
            selectedUrls = kept
    }

    function _activateCurrent() {
        if (currentIndex < 0 || currentIndex >= count)
            return
        var url = urlAt(currentIndex)
        if (selectionMode === "single")
            selectedUrls = [url]
        else if (selectionMode === "multi" && !_selectedSet[url])
            selectedUrls = selectedUrls.concat([url])  // Enter means "this one", as a double click
        imageActivated(currentIndex, url)
    }

    // Read from the model itself, not galleryModel, whose binding may not have caught up yet
    // when the view makes cells for a new model or says it changed.
    function _galleryModelOf(shown) {
        // 16: a guard against a chain of proxies that loops; real chains are one or two deep.
        for (var depth = 0; shown && depth < 16; ++depth, shown = shown.sourceModel) {
            if (typeof shown.setVisibleRangeOf === "function")
                return shown
        }
        return null
    }

    function _orIfGone(role, empty) {
        return role !== undefined ? role : empty
    }

    // Whether the model's rows have the five roles a tile requires, judged on the first cell of
    // each model: every role read goes through Python, and reading them for every cell cost a
    // new list's first screen 36 x 5 of them while its first replies waited.
    property var _tileRolesFoundIn: null

    function _modelHasTileRoles(row) {
        if (_tileRolesFoundIn === model)
            return true
        var found = row.url !== undefined && row.status !== undefined && row.source !== undefined
            && row.errorString !== undefined && row.progress !== undefined
        if (found)
            _tileRolesFoundIn = model
        return found
    }

    // Whether _warnNoTileRoles spoke of this model, once is enough. A flag, not the model
    // compared: a JavaScript array given as `model` reads as a new array each time. Cleared
    // when `model` changes; the cells, which a new model makes before that signal, call the
    // warning later in the turn.
    property bool _warnedAboutModel: false

    function _warnNoTileRoles() {
        if (_warnedAboutModel)
            return
        _warnedAboutModel = true
        console.warn("ImageGallery: `model` must be an ImageGalleryModel (or a proxy of one); a "
                     + "plain list of URLs goes in `urls` (the gallery then makes its own model)")
    }

    function _applyUrls() {
        if (!_completed || urls === undefined || urls === null)
            return
        if (!model) {
            model = _ownModel = ownModelComponent.createObject(root, { urls: urls })
        } else {
            var shown = _galleryModelOf(model)
            if (shown && shown.urls !== urls)
                shown.urls = urls
        }
    }

    // Qt makes asynchronous objects newest first: tiles started in the order their cells were
    // made (top row first) appeared bottom row first, and the first rows' thumbnails, often
    // the first to arrive, waited 20-50 ms for their tiles. So the cells made in one turn
    // start their tiles together, last row first.
    property var _tilesToStart: []

    function _queueTile(loader) {
        _tilesToStart.push(loader)
        if (_tilesToStart.length === 1)
            Qt.callLater(_startTiles)
    }

    function _forgetTile(loader) {
        var at = _tilesToStart.indexOf(loader)
        if (at >= 0)
            _tilesToStart.splice(at, 1)
    }

    function _startTiles() {
        var loaders = _tilesToStart
        _tilesToStart = []
        loaders.sort(function(a, b) { return b.index - a.index })
        for (var i = 0; i < loaders.length; ++i)
            loaders[i].active = true
    }

    function _scheduleVisibleRange() {
        Qt.callLater(_reportVisibleRange)
    }

    // The model this view last reported its screen to: told to forget it when the view shows
    // another one, so the old model's rows stop loading first for a screen that left.
    property var _reportedTo: null
    // The last range told to _reportedTo directly, "first:last": a scroll within the same rows
    // (most frames of a scroll) need not call into Python to say so again.
    property string _reportedRange: ""

    function _reportVisibleRange() {
        if (_reportedTo && _reportedTo !== galleryModel) {
            _reportedTo.forgetView(root)
            _reportedTo = null
        }
        if (_reportedTo === null)
            _reportedRange = ""
        if (!galleryModel)
            return
        _reportedTo = galleryModel
        if (!visible || width <= 0 || height <= 0 || cellHeight <= 0) {
            // Shows nothing (a page covered in a StackView, a tab not current): its old screen
            // goes, or it would keep loading first what nobody sees.
            _tellRange(0, -1)
            return
        }
        // Row 0 starts below the header, which begins at originY.
        var top = Math.max(0, contentY - originY - (headerItem ? headerItem.height : 0))
        var first = Math.floor(top / cellHeight) * columns
        // Not cut at `count`: rows that arrive later (a list set after the view is laid out)
        // are on screen from their first turn.
        var last = Math.ceil((top + height) / cellHeight) * columns - 1
        if (model === galleryModel) {
            _tellRange(first, last)
            return
        }
        _reportedRange = ""
        last = Math.min(count - 1, last)  // a proxy's rows past its count map to nothing
        // Through a proxy the model's rows under the screen need not be contiguous (a filter
        // skips rows, a sort reorders them), and neither are those of the proxy's own
        // prefetch margin: both are listed, mapped, nearest the screen first.
        var shown = []
        for (var index = first; index <= last; ++index)
            shown.push(_sourceRow(index))
        var near = []
        for (var distance = 1; distance <= galleryModel.prefetchRows; ++distance) {
            if (first - distance < 0 && last + distance >= count)
                break
            if (first - distance >= 0)
                near.push(_sourceRow(first - distance))
            if (last + distance < count)
                near.push(_sourceRow(last + distance))
        }
        galleryModel.setVisibleRowsOf(root, shown, near)
    }

    function _tellRange(first, last) {
        var range = first + ":" + last
        if (range === _reportedRange)
            return
        _reportedRange = range
        galleryModel.setVisibleRangeOf(root, first, last)
    }
}
