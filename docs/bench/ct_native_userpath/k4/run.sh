cd /work/main
for k in 1 4; do
  ./target/release/medsgm recon ct --input /work/scratch/up/in --output /work/scratch/up/dds_k$k --method dds --model models/ct_head_whole/model.safetensors --config configs/tuned_ct_head_whole.toml --steps 50 --samples $k --views 23 --reference /work/scratch/up/ref > /work/scratch/up/dds_k$k.log 2>&1
  python3 -c "
import json;d=json.load(open('/work/scratch/up/dds_k$k/summary.json'));print('k=$k',[(f['input'].split('/')[-1],round(f['metrics']['psnr'],2),round(f['metrics']['ssim'],3),round(f['seconds'],1)) for f in d['files']])"
done
