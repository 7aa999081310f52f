cd /work/main
for v in old new; do
 for d in mri_t1 validation_t1_almi5; do
  ./target/release/medsgm bench --out /work/scratch/t1tune/out_${v}_$d recon --task mri --accel 4,8 --data configs/$d.toml --split validation --methods dds --model models/mri_t1_multi/model.safetensors --config /work/scratch/t1tune/$v.toml --n 10 --steps 50 --repeats 1 > /work/scratch/t1tune/log_${v}_$d.txt 2>&1
  echo "$v $d"; grep "dds" /work/scratch/t1tune/log_${v}_$d.txt | tail -2
 done
done
