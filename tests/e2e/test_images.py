"""The image API, and compute agents building guests' disks from images."""
import hashlib
import os


def test_image_upload_and_boot_from_it(admin, stack, clean):
    data = os.urandom(3 * 1024 * 1024 + 17)
    img = admin.ok(admin.request("POST", "/image/v2/images", {
        "name": "e2e-image", "disk_format": "raw", "container_format": "bare",
        "visibility": "public"}), 201)
    assert img["status"] == "queued"
    r = admin.request("PUT", f"/image/v2/images/{img['id']}/file", raw=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    shown = admin.ok(admin.get(f"/image/v2/images/{img['id']}"))
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    listed = admin.ok(admin.get("/image/v2/images"))["images"]
    assert img["id"] in {i["id"] for i in listed}
    sid = admin.boot("e2e-from-image", image=img["id"], az="nova:host1")
    admin.wait(sid)
    disk = f"{stack.env['FERRY_STATE_DIR']}/hosts/host1/instances/{sid}/disk"
    with open(disk, "rb") as f:
        assert f.read(len(data)) == data
    admin.delete(sid)
    assert admin.request("DELETE", f"/image/v2/images/{img['id']}").status_code == 204
    assert admin.get(f"/image/v2/images/{img['id']}").status_code == 404


def test_boot_with_unknown_image_is_400(admin, stack):
    r = admin.post("/v2.1/servers", {"server": {"name": "x", "flavorRef": "6",
                   "imageRef": "11111111-2222-3333-4444-555555555555", "networks": "none"}})
    assert r.status_code == 400
