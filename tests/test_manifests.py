"""resources.qrc and every qmldir list exactly the files on disk; colours live only in themes."""
import os
import re
import xml.etree.ElementTree as ElementTree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QML = os.path.join(ROOT, "qml")


def files_under(folder):
    found = set()
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            if name.endswith((".pyc", "~")) or name.startswith("."):
                continue
            found.add(os.path.relpath(os.path.join(dirpath, name), ROOT).replace(os.sep, "/"))
    return found


def qmldirs():
    return [os.path.join(dirpath, "qmldir") for dirpath, _dirs, names in os.walk(QML)
            if "qmldir" in names]


def test_resources_qrc_lists_every_file_under_qml_and_nothing_else():
    tree = ElementTree.parse(os.path.join(ROOT, "resources.qrc"))
    resources = tree.getroot().findall("qresource")
    assert [r.get("prefix") for r in resources] == ["/"]
    listed = [f.text for f in resources[0].findall("file")]
    assert len(listed) == len(set(listed)), "listed twice"
    assert set(listed) == files_under(QML)


def test_each_qmldir_lists_exactly_its_qml_files():
    assert qmldirs(), "no qmldir under qml/"
    for qmldir in qmldirs():
        folder = os.path.dirname(qmldir)
        listed = []
        with open(qmldir, encoding="utf-8") as handle:
            for line in handle:
                words = line.split()
                if not words or words[0] in ("module", "plugin", "classname", "depends", "import",
                                             "designersupported", "typeinfo") or words[0].startswith("#"):
                    continue
                if words[0] in ("singleton", "internal"):
                    words = words[1:]
                listed.append(words[-1])
        on_disk = {os.path.relpath(os.path.join(d, n), folder).replace(os.sep, "/")
                   for d, _s, names in os.walk(folder) for n in names if n.endswith((".qml", ".js"))}
        assert len(listed) == len(set(listed)), f"{qmldir}: a file listed twice"
        assert set(listed) == on_disk, qmldir


def test_no_colour_literal_outside_the_theme_files():
    literal = re.compile(r"""["']#[0-9a-fA-F]{3,8}["']|Qt\.rgba?\(|Qt\.hsla?\(|color:\s*["'][a-z]+["']""")
    offenders = []
    for path in files_under(QML):
        if "/themes/" in path or not path.endswith(".qml"):
            continue
        with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if literal.search(line):
                    offenders.append(f"{path}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
